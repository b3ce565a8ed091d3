"""Update scope applied (which parameters move; declared in :mod:`pulse.models.scope`), the
adapter-disabled reference, and adapter I/O.

The scope is applied with PEFT: LoRA on the linear layers of the chosen components, selected by
a regex anchored at each component's module path (``q_proj`` also exists in the vision tower, so
leaf names alone would leak into it), and ``modules_to_save`` for a fully trained projector.
The reference model for KL / NPO is the same model with the adapter disabled: no second copy.

Sequential requests either keep training the same adapter (its disabled state stays the initial
model) or merge it and start a new one with :func:`merge_and_new` (the reference becomes the
model after the previous request).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftConfig, PeftModel, get_peft_model
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from pulse.errors import ConfigError, DataError, ModelError
from pulse.files import read_json
from pulse.models.scope import COMPONENTS, UpdateScope

# Module paths per family (transformers 5 layout), most specific first within each component.
_LLM_PATHS = ("model.language_model", "model.text_model")
_PROJECTOR_PATHS = ("model.multi_modal_projector", "model.connector", "model.visual.merger")
_VISION_PATHS = ("model.vision_tower", "model.vision_model", "model.visual")


@dataclass(frozen=True)
class ComponentPaths:
    """Module paths of the three components inside the (un-wrapped) model."""

    llm: str
    projector: str
    vision: str

    def as_dict(self) -> dict[str, str]:
        return {"llm": self.llm, "projector": self.projector, "vision": self.vision}


def base_model(model: nn.Module) -> nn.Module:
    """The transformers model under a PEFT wrapper (the model itself when not wrapped)."""
    return model.get_base_model() if isinstance(model, PeftModel) else model


def find_components(model: nn.Module) -> ComponentPaths:
    """Locate the language model, projector and vision tower by their module paths."""
    modules = dict(base_model(model).named_modules())

    def first(paths: tuple[str, ...], component: str) -> str:
        for path in paths:
            if path in modules:
                return path
        raise ModelError(
            f"{type(base_model(model)).__name__}: cannot find the {component} "
            f"(looked for {', '.join(paths)}); this model family is not supported"
        )

    return ComponentPaths(
        llm=first(_LLM_PATHS, "language model"),
        projector=first(_PROJECTOR_PATHS, "projector"),
        vision=first(_VISION_PATHS, "vision tower"),
    )


def component_of(name: str, paths: ComponentPaths) -> str:
    """The component a parameter or module name belongs to, or ``"other"``.

    Works on plain and PEFT-wrapped names (``base_model.model.<path>...``); the projector is
    tested first because Qwen2-VL's merger lives inside its vision tower.
    """
    for component in ("projector", "vision", "llm"):
        path = getattr(paths, component)
        if name == path or name.startswith(path + ".") or f".{path}." in name:
            return component
    return "other"


def _linear_leaves(model: nn.Module, prefix: str, exclude: str | None) -> list[str]:
    leaves = set()
    for name, module in model.named_modules():
        inside = name.startswith(prefix + ".")
        excluded = exclude is not None and (name == exclude or name.startswith(exclude + "."))
        if inside and not excluded and isinstance(module, nn.Linear):
            leaves.add(name.rsplit(".", 1)[-1])
    return sorted(leaves)


def lora_target_regex(model: nn.Module, scope: UpdateScope) -> str:
    """A PEFT ``target_modules`` regex (full match) for the linear layers of LoRA components."""
    paths = find_components(model)
    model = base_model(model)
    parts = []
    for component in scope.lora_components:
        prefix = getattr(paths, component)
        # Qwen2-VL: the vision tower contains the projector (merger); keep them apart.
        exclude = paths.projector if component == "vision" else None
        leaves = _linear_leaves(model, prefix, exclude)
        if scope.target_names is not None:
            leaves = [leaf for leaf in leaves if leaf in scope.target_names]
        if not leaves:
            raise ModelError(f"{prefix}: no linear layers to put LoRA on for the {component}")
        guard = f"(?!{re.escape(exclude)}\\.)" if exclude and exclude.startswith(prefix) else ""
        parts.append(f"{guard}{re.escape(prefix)}\\.(?:.*\\.)?(?:{'|'.join(leaves)})")
    return "|".join(f"(?:{p})" for p in parts)


@contextmanager
def _quiet_peft() -> Iterator[None]:
    # peft 0.21 still calls transformers' deprecated `is_gradient_checkpointing`.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
        yield


def enable_checkpointing(model: nn.Module) -> None:
    """Non-reentrant gradient checkpointing that still trains adapters: without input grads,
    checkpointed blocks under frozen embeddings never train (PEFT)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x name
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    model.enable_input_require_grads()


def apply_scope(
    model: nn.Module,
    scope: UpdateScope,
    *,
    adapter_name: str = "default",
    gradient_checkpointing: bool = False,
) -> PeftModel:
    """Wrap ``model`` in a fresh PEFT adapter that trains exactly ``scope``; the rest is frozen."""
    if isinstance(model, PeftModel) or any(isinstance(m, BaseTunerLayer) for m in model.modules()):
        raise ModelError("the model already has an adapter; use merge_and_new() to start another")
    paths = find_components(model)
    regex = lora_target_regex(model, scope)
    if scope.token_indices:
        rows = model.get_input_embeddings().weight.shape[0]
        if max(scope.token_indices) >= rows:
            raise ConfigError(
                f"update scope 'token_indices': token {max(scope.token_indices)} is beyond the "
                f"model's {rows} embedding rows"
            )
    if gradient_checkpointing:
        enable_checkpointing(model)
    config = LoraConfig(
        trainable_token_indices=sorted(set(scope.token_indices)) or None,
        r=scope.rank,
        lora_alpha=scope.alpha,
        lora_dropout=scope.dropout,
        target_modules=regex,
        modules_to_save=[paths.projector] if scope.projector == "full" else None,
        bias="none",
    )
    try:
        with _quiet_peft():
            return get_peft_model(model, config, adapter_name=adapter_name)
    except ValueError as exc:
        raise ModelError(f"cannot apply the update scope: {exc}") from exc


def trainable_parameters(model: nn.Module) -> dict[str, int]:
    """Trainable parameter counts per component, plus ``other`` and ``total``."""
    paths = find_components(model)
    counts = dict.fromkeys((*COMPONENTS, "other", "total"), 0)
    for name, param in model.named_parameters():
        if param.requires_grad:
            counts[component_of(name, paths)] += param.numel()
            counts["total"] += param.numel()
    return counts


@contextmanager
def reference_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Inside this context ``model`` computes the reference (adapter-disabled) model."""
    if not isinstance(model, PeftModel):
        raise ModelError("a reference model without a second copy needs a PEFT adapter")
    with model.disable_adapter():
        yield model


def reference_forward(model: nn.Module, **batch: Any) -> Any:
    """Forward pass of the reference model (adapter disabled), without gradients."""
    with torch.no_grad(), reference_mode(model):
        return model(**batch)


def merge_and_new(model: nn.Module, scope: UpdateScope, **kwargs: Any) -> PeftModel:
    """Merge the current adapter into the weights and start a new adapter with ``scope``."""
    return apply_scope(merge(model), scope, **kwargs)


def merge(model: nn.Module) -> nn.Module:
    """Fold the adapter into the base weights (in place) and return the plain model."""
    if not isinstance(model, PeftModel):
        return model
    merged = model.merge_and_unload()
    merged.__dict__.pop("peft_config", None)  # so a new adapter can be applied cleanly
    return merged


@contextmanager
def _atomic_dir(out_dir: str | Path) -> Iterator[Path]:
    """Write a directory under a temporary name, then move it into place in one rename."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def save_adapter(model: PeftModel, out_dir: str | Path) -> Path:
    """Save the adapter (``adapter_config.json`` + ``adapter_model.safetensors``)."""
    if not isinstance(model, PeftModel):
        raise ModelError("save_adapter needs a model with a PEFT adapter")
    with _atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
    return Path(out_dir)


def load_adapter(
    model: nn.Module, adapter_dir: str | Path, *, trainable: bool = False
) -> PeftModel:
    """Put a saved adapter on ``model``; ``trainable=True`` to continue training it."""
    adapter_dir = check_adapter(adapter_dir)
    try:
        with _quiet_peft():
            return PeftModel.from_pretrained(model, adapter_dir, is_trainable=trainable)
    except Exception as exc:  # PEFT and safetensors raise many types for an adapter that
        # does not fit (missing modules: ValueError; shapes: RuntimeError; bytes: their own)
        raise ModelError(f"{adapter_dir}: does not fit this model ({_first_cause(exc)})") from exc


def check_adapter(adapter_dir: str | Path) -> Path:
    """``adapter_dir`` if it holds an adapter whose config PEFT reads (checked before a model
    loads; whether it fits the model is known only when it is put on one), else a one-line
    ModelError naming it."""
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ModelError(f"{adapter_dir}: not an adapter directory (no adapter_config.json)")
    if not (adapter_dir / "adapter_model.safetensors").is_file():
        raise ModelError(f"{adapter_dir}: no adapter_model.safetensors")
    path = adapter_dir / "adapter_config.json"
    try:
        config = read_json(path)
    except DataError as exc:
        raise ModelError(f"{adapter_dir}: adapter_config.json is {exc.detail}") from None
    if not isinstance(config, dict) or not isinstance(config.get("peft_type"), str):
        raise ModelError(f"{adapter_dir}: adapter_config.json has no 'peft_type' (not PEFT's)")
    try:
        PeftConfig.from_pretrained(adapter_dir)
    except Exception as exc:  # unknown keys, values of the wrong type
        raise ModelError(
            f"{adapter_dir}: adapter_config.json is not a valid PEFT config ({_first_cause(exc)})"
        ) from exc
    return adapter_dir


def _first_cause(exc: BaseException) -> str:
    """The line of a (multi-line) library error that says what is wrong."""
    if isinstance(exc, KeyError) and exc.args:  # PEFT's lookup of an unknown type name
        return f"unknown value {exc.args[0]!r}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "size mismatch" in line or "not found" in line:
            return line.rstrip(".")
    return lines[0].rstrip(".") if lines else type(exc).__name__


def save_merged(model: nn.Module, out_dir: str | Path, processor: Any = None) -> nn.Module:
    """Merge the adapter (in place) and save a plain transformers checkpoint (safetensors).

    Returns the merged model: the PEFT wrapper passed in must not be used afterwards. The
    directory loads with ``AutoModelForImageTextToText.from_pretrained`` alone.
    """
    merged = merge(model)
    with _atomic_dir(out_dir) as tmp:
        merged.save_pretrained(tmp)
        if processor is not None:
            processor.save_pretrained(tmp)
    return merged
