"""Weight edits: what a training-free method (MANU) leaves instead of an adapter.

An edit zeroes whole neurons: for each listed linear module, the input columns of its weight at
the given indices (the neuron's outgoing weights: an MLP's ``down_proj`` / ``fc2`` column j
carries intermediate neuron j to the residual stream). Zeroing them removes the neuron's
contribution exactly, whatever the inputs. It is saved as a mask, not as merged weights:

    EDIT/edit.safetensors   one int64 tensor per edited module (its name: the module's path in
                            the plain transformers model), the zeroed column indices
    EDIT/edit.json          format, kind, the method's facts (fractions, counts per component)

A few kilobytes instead of a copy of the model; applying it to the model it was computed on (the
request's base with the earlier states merged) gives the edited weights exactly. Everything that
loads a finished request applies an edit where an adapter would be merged
(:func:`apply_state`): evaluation, export (merged), sequential chains, ``pulse eval --adapter``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from pulse.errors import DataError, ModelError
from pulse.files import read_json, write_json

EDIT_FILE = "edit.safetensors"
EDIT_RECORD = "edit.json"
EDIT_FORMAT = 1


@dataclass
class WeightEdit:
    """Zeroed input columns per linear module (module path -> column indices)."""

    columns: dict[str, Tensor]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def zeroed(self) -> int:
        return sum(int(c.numel()) for c in self.columns.values())


def is_edit_dir(path: str | Path) -> bool:
    return (Path(path) / EDIT_FILE).is_file()


def save_edit(edit: WeightEdit, out_dir: str | Path) -> Path:
    """Write ``edit`` to ``out_dir`` atomically (safetensors + a JSON record)."""
    from pulse.models.adapters import _atomic_dir

    tensors = {name: idx.to(torch.int64).contiguous().cpu() for name, idx in edit.columns.items()}
    with _atomic_dir(out_dir) as tmp:
        save_file(tensors, str(tmp / EDIT_FILE), metadata={"format": str(EDIT_FORMAT)})
        write_json(tmp / EDIT_RECORD, {"format": EDIT_FORMAT, "kind": "zero_columns", **edit.info})
    return Path(out_dir)


def load_edit(edit_dir: str | Path) -> WeightEdit:
    """The edit saved in ``edit_dir``; one line when it is not one."""
    folder = Path(edit_dir)
    if not is_edit_dir(folder):
        raise ModelError(f"{folder}: not a weight edit (no {EDIT_FILE})")
    try:
        columns = load_file(str(folder / EDIT_FILE))
    except Exception as exc:  # safetensors raises its own error types for damaged bytes
        raise DataError(folder / EDIT_FILE, f"unreadable ({exc})") from None
    info = read_json(folder / EDIT_RECORD) if (folder / EDIT_RECORD).is_file() else {}
    return WeightEdit(columns, dict(info) if isinstance(info, Mapping) else {})


def apply_edit(model: nn.Module, edit: WeightEdit) -> nn.Module:
    """Zero the edit's columns in ``model``'s weights (in place) and return the model."""
    from pulse.models.adapters import base_model

    inner = base_model(model)
    for name, idx in edit.columns.items():
        try:
            module = inner.get_submodule(name)
        except AttributeError:
            raise ModelError(f"weight edit: this model has no module {name!r}") from None
        weight = getattr(module, "weight", None)
        width = weight.shape[1] if weight is not None and weight.dim() == 2 else 0
        if not width or (idx.numel() and int(idx.max()) >= width):
            raise ModelError(f"weight edit: module {name!r} does not fit the edit")
        with torch.no_grad():
            weight[:, idx.to(weight.device)] = 0
    return model


def apply_state(model: nn.Module, path: str | Path) -> nn.Module:
    """``model`` with a finished state applied and folded into its weights: a weight edit
    (zeroed in place) or an adapter (loaded and merged)."""
    if is_edit_dir(path):
        return apply_edit(model, load_edit(path))
    from pulse.models.adapters import load_adapter, merge

    return merge(load_adapter(model, path))
