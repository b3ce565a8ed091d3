"""Run MLLMU-Bench's eval.py on a machine without CUDA: it moves every input with
``.to("cuda")``; with this folder on ``PYTHONPATH`` those moves go to the CPU instead
(tensors, BatchFeature and BatchEncoding, device given by position or by keyword).
Python imports ``sitecustomize`` at start-up; nothing else changes (docs/interop.md)."""

import torch
from transformers import BatchEncoding, BatchFeature


def _cpu(value):
    return "cpu" if value == "cuda" else value


def _patch(cls):
    original = cls.to

    def to(self, *args, **kwargs):
        if "device" in kwargs:
            kwargs["device"] = _cpu(kwargs["device"])
        return original(self, *(_cpu(a) for a in args), **kwargs)

    cls.to = to


for _cls in (torch.Tensor, BatchFeature, BatchEncoding):
    _patch(_cls)
