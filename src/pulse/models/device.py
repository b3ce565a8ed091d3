"""The device a run uses: CUDA when present, the CPU otherwise, or what ``--device`` says.

``auto`` is this process's GPU (``cuda:LOCAL_RANK`` under a launcher: one GPU per process) when
PyTorch sees one, else the CPU. ``cpu`` hides every GPU from the process (set before anything
touches CUDA, so the Trainer, the loaders and every library agree); ``cuda`` without a GPU is
one line. Precision is the run config's (``models.dtype``, ``train.bf16``), checked here against
the device: bf16 on a GPU without bf16 support is refused in one line rather than emulated.
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


def check_precision(device: torch.device, *, dtype: str, bf16: bool) -> None:
    """One line when the config asks for bf16 on a GPU that has none."""
    if (dtype == "bfloat16" or bf16) and not bf16_supported(device):
        raise ConfigError(
            f"the config asks for bf16 (models.dtype / train.bf16) but {device} "
            f"({torch.cuda.get_device_name(device)}) has no bf16: use float16 or float32"
        )


def trainer_device(device: torch.device) -> dict[str, Any]:
    """TrainingArguments that keep the Trainer on ``device`` (it takes a GPU when it sees
    one otherwise)."""
    return {"use_cpu": True} if device.type == "cpu" and torch.cuda.is_available() else {}
