"""The device a run uses: CUDA when present, the CPU otherwise, or what ``--device`` says.

``auto`` is this process's GPU (``cuda:LOCAL_RANK`` under a launcher: one GPU per process) when
PyTorch sees one, else the CPU. ``cpu`` hides every GPU from the process (set before anything
touches CUDA, so the Trainer, the loaders and every library agree); ``cuda`` without a GPU is
one line. A run's training precision follows the device unless its config gives one
(:func:`bf16_training`; applied to a run config by :mod:`pulse.protocol.precision`).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from pulse.errors import ConfigError
from pulse.models.collective import local_rank

CHOICES = ("auto", "cpu", "cuda")


def choose_device(choice: str = "auto") -> torch.device:
    """Apply a ``--device`` choice to this process and return the device it gives."""
    if choice not in CHOICES:
        raise ConfigError(f"--device: expected one of {', '.join(CHOICES)}, got {choice!r}")
    if choice == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # read when CUDA is first initialised
        return torch.device("cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: PyTorch sees no CUDA device here")
    return resolve_device()


def resolve_device() -> torch.device:
    """This process's GPU when there is one (the launcher's ``LOCAL_RANK`` picks it), else
    the CPU."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") != "" and torch.cuda.is_available():
        return torch.device("cuda", local_rank())
    return torch.device("cpu")


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` computes in bf16 natively (CPU autocast always runs)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return True


def bf16_training(
    device_type: str, *, cuda_available: bool, bf16_supported: bool, explicit: bool | None
) -> bool:
    """Whether requests train in bf16 autocast on ``device_type`` ("cuda" or "cpu").

    ``explicit`` (the config's own choice) always wins, except bf16 on a GPU without native
    bf16 (before Ampere), refused in one line rather than emulated. Unset (None): bf16 on a
    CUDA GPU that has it (the usual mixed precision: float32 weights, bf16 products), float32
    elsewhere. A CPU stays in float32: there bf16 autocast is barely faster and cost the tiny
    models much of their knowledge (docs/benchmarks.md).
    """
    on_gpu = device_type == "cuda" and cuda_available
    if explicit is None:
        return on_gpu and bf16_supported
    if explicit and on_gpu and not bf16_supported:
        raise ConfigError(
            "the config asks for bf16 (models.dtype / train.bf16) but this GPU has no native "
            "bf16: use float16 or float32"
        )
    return explicit


def trainer_device(device: torch.device) -> dict[str, Any]:
    """TrainingArguments that keep the Trainer on ``device`` (it takes a GPU when it sees
    one otherwise)."""
    return {"use_cpu": True} if device.type == "cpu" and torch.cuda.is_available() else {}
