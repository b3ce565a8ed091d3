"""Packing a collated training batch into fewer, fuller rows (no compute spent on padding).

A batch of short question / answer examples is mostly padding once its rows are padded to the
longest one (the world's corpus: 81 tokens per row for about 48 real ones). Packing places the
examples end to end in rows of about ``max_tokens`` tokens (first fit, longest first). Each
example keeps its own position ids, starting at 0, and no ``attention_mask`` is passed: from
position ids that restart, transformers builds a block-diagonal causal mask, so no example sees
another and every logit is the one the padded batch gives (tested to float rounding). The step
is the same step: same examples, same loss; only the tensor layout changes.

``example_index`` ``[R, T]`` names the example of every position (-1 on the tail padding of a
row), so per-example quantities (sequence log-probs, answer lengths) still come out per example.

Supported layout: LLaVA-1.5 (``input_ids``, ``attention_mask``, ``labels``, one
``pixel_values`` entry per image, images in row order) on a model whose positions are plain
1-D position ids. Families that add image keys (grid sizes, patch masks) or compute their own
multi-axis positions (Qwen2-VL) are refused by :func:`check_packable`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from transformers import BatchFeature

from pulse.errors import ConfigError, ModelError
from pulse.models.chat import IGNORE_INDEX

# The training collator's LLaVA-1.5 layout: right-padded rows and one pixel_values entry per
# row that holds image tokens. Packing and pulse.models.encoded both rely on it.
PACKABLE_KEYS = frozenset({"input_ids", "attention_mask", "labels", "pixel_values"})
# Model types whose forward takes 1-D position ids and one pixel_values entry per image.
PACKABLE_MODEL_TYPES = frozenset({"llava", "llama"})
EXAMPLE_INDEX = "example_index"


def packable(model: nn.Module) -> bool:
    """Whether ``model``'s training batches can be packed."""
    return _model_type(model) in PACKABLE_MODEL_TYPES


def check_packable(model: nn.Module) -> None:
    """Refuse packing for a model whose batches cannot be packed (one line, the model type)."""
    if not packable(model):
        model_type = _model_type(model)
        raise ConfigError(
            f"packing ('pack_tokens') supports {sorted(PACKABLE_MODEL_TYPES)} models, not "
            f"{model_type!r}: set pack_tokens to 0 to train with padded batches"
        )


def _model_type(model: nn.Module) -> str | None:
    return getattr(getattr(model, "config", None), "model_type", None)


def image_rows(input_ids: torch.Tensor, image_token_id: int) -> torch.Tensor:
    """Which rows of a batch show an image: those holding its placeholder tokens."""
    return (input_ids == image_token_id).any(dim=1)


def first_fit(lengths: list[int], capacity: int) -> list[list[int]]:
    """Example indices grouped into rows of at most ``capacity`` tokens: longest first, each
    into the first row with room (ties in input order, so the result is deterministic).
    Each row lists its examples in ascending order."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda k: (-lengths[k], k)):
        for r, free in enumerate(room):
            if lengths[i] <= free:
                rows[r].append(i)
                room[r] -= lengths[i]
                break
        else:
            rows.append([i])
            room.append(capacity - lengths[i])
    return [sorted(row) for row in rows]


def pack_batch(
    batch: Mapping[str, Any], max_tokens: int, *, pad_token_id: int, image_token_id: int | None
) -> BatchFeature:
    """Repack a right-padded collated batch into rows of about ``max_tokens`` tokens.

    A row holds at most ``max(max_tokens, longest example)`` tokens. Returns ``input_ids``,
    ``labels``, ``position_ids``, ``example_index`` and, when images are present, their
    ``pixel_values`` reordered to the packed rows' order.
    """
    extra = set(batch) - PACKABLE_KEYS
    if extra:
        raise ConfigError(
            f"packing supports LLaVA-1.5-style batches only; this processor also returns "
            f"{sorted(extra)}: set pack_tokens to 0"
        )
    ids, labels = batch["input_ids"], batch["labels"]
    mask = batch.get("attention_mask")
    if mask is None:
        mask = torch.ones_like(ids)
    if bool((mask[:, 1:] > mask[:, :-1]).any()):
        raise ModelError("packing needs right-padded rows (the training collator's layout)")
    lengths = mask.sum(1).tolist()
    rows = first_fit(lengths, max(max_tokens, max(lengths)))
    width = max(sum(lengths[i] for i in row) for row in rows)

    new_ids = torch.full((len(rows), width), pad_token_id, dtype=ids.dtype)
    new_labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=labels.dtype)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    example = torch.full((len(rows), width), -1, dtype=torch.long)
    for r, row in enumerate(rows):
        start = 0
        for i in row:
            n = lengths[i]
            new_ids[r, start : start + n] = ids[i, :n]
            new_labels[r, start : start + n] = labels[i, :n]
            positions[r, start : start + n] = torch.arange(n)
            example[r, start : start + n] = i
            start += n
        # The tail padding continues the last example's positions: it joins that example's
        # block (its labels are ignored and nothing before it attends to it).
        last = lengths[row[-1]]
        positions[r, start:] = torch.arange(last, last + width - start)

    out = {
        "input_ids": new_ids,
        "labels": new_labels,
        "position_ids": positions,
        EXAMPLE_INDEX: example,
    }
    if "pixel_values" in batch:
        if image_token_id is None:
            raise ModelError("a batch with images but no image token to locate them")
        # Images are consumed in row-major order of the image tokens: reorder them to follow.
        has_image = image_rows(ids, image_token_id)
        if len(batch["pixel_values"]) != int(has_image.sum()):
            raise ModelError("packing needs one image per example that has image tokens")
        image_of = (has_image.long().cumsum(0) - 1).tolist()
        order = [image_of[i] for row in rows for i in row if has_image[i]]
        out["pixel_values"] = batch["pixel_values"][order]
    return BatchFeature(out)
