"""A run's precision, decided for its device before the run directory is opened.

What the config gives wins: ``train.bf16`` (training autocast), else a ``models.dtype`` other
than ``auto`` (bf16 autocast when it is ``bfloat16``, none otherwise). A config that gives
neither trains in bf16 autocast on a CUDA GPU with native bf16 and in float32 elsewhere
(:func:`pulse.models.device.bf16_training`). The decision is written into the config's
``train.bf16`` before anything reads it, so it is part of the config's digest, of every
request's cache key and of the run's ``config.yaml``; a CPU run's config is left as it was
(its digest does not change). Models are loaded as ``models.dtype`` says either way.
"""

from __future__ import annotations

import torch

from pulse.models.device import bf16_supported, bf16_training
from pulse.protocol.config import RunConfig


def _given(config: RunConfig) -> bool | None:
    """The training precision the config itself gives, or None."""
    if "bf16" in config.train.model_fields_set:
        return config.train.bf16
    if "dtype" in config.models.model_fields_set and config.models.dtype != "auto":
        return config.models.dtype == "bfloat16"
    return None


def resolve_precision(
    config: RunConfig, *, device_type: str, cuda_available: bool, bf16_supported: bool
) -> RunConfig:
    """``config`` with ``train.bf16`` decided for the device (the same object when nothing
    changes); one line for bf16 asked for where the GPU has none."""
    facts = {
        "cuda_available": cuda_available,
        "bf16_supported": bf16_supported,
    }
    if config.models.dtype == "bfloat16":
        bf16_training(device_type, **facts, explicit=True)  # refused on a GPU without bf16
    for spec in config.scenarios.values():  # a scenario's own train.bf16 wins over the run's
        if spec.train is not None and "bf16" in spec.train.model_fields_set:
            bf16_training(device_type, **facts, explicit=spec.train.bf16)
    bf16 = bf16_training(device_type, **facts, explicit=_given(config))
    if bf16 == config.train.bf16:
        return config
    train = config.train.model_copy(update={"bf16": bf16})
    return config.model_copy(update={"train": train})


def for_device(config: RunConfig, device: torch.device) -> RunConfig:
    """:func:`resolve_precision` for ``device`` as PyTorch sees it here."""
    return resolve_precision(
        config,
        device_type=device.type,
        cuda_available=torch.cuda.is_available(),
        bf16_supported=bf16_supported(device),
    )


def describe(config: RunConfig) -> str:
    """The run's precision in words (the manifest's ``precision``, shown in the report)."""
    weights = "as stored" if config.models.dtype == "auto" else config.models.dtype
    training = "bf16 autocast" if config.train.bf16 else "no autocast"
    return f"training: {training}; weights: {weights}"
