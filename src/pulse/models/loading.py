"""Load any local Hugging Face image-text-to-text checkpoint and its processor, offline.

Nothing is fetched: ``local_files_only`` and ``HF_HUB_OFFLINE`` are always set. Only safetensors
weights are read (pickled ``.bin`` files can run code). Every way a directory can be unusable is
one :class:`~pulse.errors.ModelError` line naming the directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pulse.errors import ConfigError, ModelError

DTYPES: dict[str, Any] = {
    "auto": "auto",  # what the checkpoint's config says
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def resolve_dtype(dtype: str | torch.dtype) -> Any:
    """``"auto"`` or a torch dtype from a config string."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ConfigError(f"model dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def _supported_types() -> set[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    return set(MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES)


def check_model_dir(path: str | Path, *, trust_remote_code: bool = False) -> dict[str, Any]:
    """Check that ``path`` is a loadable checkpoint directory; return its ``config.json``."""
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"{path}: model directory not found")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelError(f"{path}: no config.json (not a Hugging Face checkpoint directory)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{config_file}: unreadable JSON ({exc})") from exc
    if not any(path.glob("*.safetensors")):
        found = "only .bin weights (convert them to safetensors)" if any(path.glob("*.bin")) else ""
        raise ModelError(f"{path}: no *.safetensors weights {found}".rstrip())
    model_type = config.get("model_type")
    remote = trust_remote_code and "AutoModelForImageTextToText" in config.get("auto_map", {})
    if model_type not in _supported_types() and not remote:
        raise ModelError(
            f"{path}: model type {model_type!r} is not an image-text-to-text model this toolkit "
            "can drive (AutoModelForImageTextToText has no class for it)"
        )
    return config


def load_model(
    path: str | Path,
    *,
    dtype: str | torch.dtype = "auto",
    device: str | torch.device | None = None,
    device_map: str | dict[str, Any] | None = None,
    adapter: str | Path | None = None,
    adapter_trainable: bool = False,
    trust_remote_code: bool = False,
    attn_implementation: str | None = None,
) -> nn.Module:
    """Load the model in ``path`` (and optionally a PEFT adapter on top), in eval mode.

    ``device_map`` (e.g. ``"auto"`` to spread a 13B model over GPUs) takes precedence over
    ``device``; leave both unset under ``accelerate launch``, which places the model itself.
    """
    from transformers import AutoModelForImageTextToText

    _offline()
    check_model_dir(path, trust_remote_code=trust_remote_code)
    from pulse.models.edits import is_edit_dir

    edited = adapter is not None and is_edit_dir(adapter)  # a weight edit (MANU) in its place
    if edited and adapter_trainable:
        raise ModelError(f"{adapter}: a weight edit cannot be trained further")
    if adapter is not None and not edited:
        from pulse.models.adapters import check_adapter

        check_adapter(adapter)  # before the (slow) model load
    kwargs: dict[str, Any] = {"dtype": resolve_dtype(dtype)}
    if device_map is not None:
        kwargs["device_map"] = device_map
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            path,
            local_files_only=True,
            use_safetensors=True,
            trust_remote_code=trust_remote_code,
            **kwargs,
        )
    except Exception as exc:  # corrupt shards raise SafetensorError, OOM a RuntimeError, ...
        raise ModelError(f"{path}: cannot load the model: {_first_line(exc)}") from exc
    if device is not None and device_map is None:
        model.to(device)
    if edited:
        from pulse.models.edits import apply_edit, load_edit

        model = apply_edit(model, load_edit(adapter))
    elif adapter is not None:
        from pulse.models.adapters import load_adapter

        model = load_adapter(model, adapter, trainable=adapter_trainable)
    if not adapter_trainable:
        model.eval()
    return model


def load_processor(path: str | Path, *, trust_remote_code: bool = False) -> Any:
    """Load the processor (tokenizer + image processor + chat template) saved in ``path``; an
    earlier pulse version's template is replaced (:func:`pulse.models.template.upgrade_legacy`)."""
    from transformers import AutoProcessor

    _offline()
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"{path}: model directory not found")
    try:
        processor = AutoProcessor.from_pretrained(
            path, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except Exception as exc:  # e.g. Qwen2-VL's processor needs torchvision (video processor)
        raise ModelError(f"{path}: cannot load the processor: {_first_line(exc)}") from exc
    from pulse.models.template import upgrade_legacy

    # A tiny model saved by an earlier version: the same prompts, assistant turns fixed.
    return upgrade_legacy(processor)


def load_model_and_processor(path: str | Path, **kwargs: Any) -> tuple[nn.Module, Any]:
    """:func:`load_model` and :func:`load_processor` of the same directory."""
    trust = kwargs.get("trust_remote_code", False)
    return load_model(path, **kwargs), load_processor(path, trust_remote_code=trust)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
