"""Training examples encoded once and re-batched every epoch.

Collating a batch runs the chat template, the tokenizer and the image processor on every
example, every epoch: on the tiny model that is about 16 ms of a ~110 ms step. A training run
revisits a fixed list of examples, so :class:`EncodedExamples` encodes each example the first
time a batch asks for it (all the batch's new examples in one collator call), keeps its row
(token ids, labels, its image's pixel values) and assembles later batches from stored rows by
padding and stacking, which gives exactly the tensors the collator gives.

Only layouts that split into independent rows are stored: ``input_ids``, ``attention_mask``,
``labels`` and one ``pixel_values`` entry per image (LLaVA-1.5, the tiny model). A processor
that adds other keys (image grid sizes, patch masks) is collated afresh every time. What is
stored is bounded by a byte budget; past it new examples are encoded per batch again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from transformers import BatchFeature

from pulse.models.chat import IGNORE_INDEX, ChatCollator

ROW_KEYS = frozenset({"input_ids", "attention_mask", "labels", "pixel_values"})
# Enough for the tiny model's corpus many times over (a 32 px image is 12 KiB); with 336 px
# images (1.3 MiB each) it holds ~750 of them and leaves the rest to per-batch encoding.
DEFAULT_MAX_BYTES = 1 << 30


@dataclass(frozen=True)
class EncodedRow:
    input_ids: Tensor  # [n], unpadded
    labels: Tensor  # [n]
    pixel_values: Tensor | None  # [1, C, H, W] or None for a text-only example


@dataclass
class ByteBudget:
    """Bytes that several stores fill together (a request's forget, retain and refusal
    examples share one bound)."""

    limit: int
    used: int = 0

    def take(self, size: int) -> bool:
        if self.used + size > self.limit:
            return False
        self.used += size
        return True


class EncodedExamples:
    """Batches of ``examples`` (by index) as ``chat`` collates them, encoding each once.

    ``budget``: a byte bound of its own, or a :class:`ByteBudget` shared with other stores.
    """

    def __init__(
        self,
        chat: ChatCollator,
        examples: Sequence[Any],
        budget: int | ByteBudget = DEFAULT_MAX_BYTES,
    ) -> None:
        self.chat = chat
        self.examples = examples
        self.budget = budget if isinstance(budget, ByteBudget) else ByteBudget(budget)
        self.stored_bytes = 0
        self.splittable: bool | None = None  # decided by the first batch
        self._rows: dict[int, EncodedRow] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def batch(self, indices: Sequence[int]) -> BatchFeature:
        """The collated batch of ``examples[i] for i in indices`` (right-padded)."""
        if self.splittable is False or self.budget.limit <= 0:
            return self.chat([self.examples[i] for i in indices])
        missing = sorted({i for i in indices if i not in self._rows})
        fresh: dict[int, EncodedRow] = {}
        if missing:
            encoded = self.chat([self.examples[i] for i in missing])
            if self.splittable is None:
                self.splittable = _splits(self.chat, encoded)
            if not self.splittable:
                return self.chat([self.examples[i] for i in indices])
            fresh = dict(zip(missing, _split(self.chat, encoded), strict=True))
            self._store(fresh)
        return self._assemble([self._rows.get(i) or fresh[i] for i in indices])

    def _store(self, rows: dict[int, EncodedRow]) -> None:
        for index, row in rows.items():
            size = _nbytes(row)
            if not self.budget.take(size):
                return
            self._rows[index] = row
            self.stored_bytes += size

    def _assemble(self, rows: list[EncodedRow]) -> BatchFeature:
        width = max(len(row.input_ids) for row in rows)
        pad = self.chat.tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=rows[0].input_ids.dtype)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=rows[0].labels.dtype)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            n = len(row.input_ids)
            ids[r, :n], labels[r, :n], mask[r, :n] = row.input_ids, row.labels, 1
        batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        pixels = [row.pixel_values for row in rows if row.pixel_values is not None]
        if pixels:
            batch["pixel_values"] = torch.cat(pixels)
        return BatchFeature(batch)


def _image_rows(chat: ChatCollator, batch: BatchFeature) -> Tensor | None:
    """Which rows show an image (they hold its placeholder tokens); None when unknown."""
    if "pixel_values" not in batch:
        return torch.zeros(batch["input_ids"].shape[0], dtype=torch.bool)
    if chat.image_token_id is None:
        return None
    return (batch["input_ids"] == chat.image_token_id).any(dim=1)


def _splits(chat: ChatCollator, batch: BatchFeature) -> bool:
    """Whether ``batch`` is right-padded rows plus one pixel-values entry per image row."""
    if not set(batch.keys()) <= ROW_KEYS:
        return False
    has_image = _image_rows(chat, batch)
    if has_image is None:
        return False
    return "pixel_values" not in batch or batch["pixel_values"].shape[0] == int(has_image.sum())


def _split(chat: ChatCollator, batch: BatchFeature) -> list[EncodedRow]:
    has_image = _image_rows(chat, batch)
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    image = 0
    rows = []
    for r, n in enumerate(lengths):
        pixels = None
        if has_image[r]:
            # clone: a view would keep the whole batch's tensor alive
            pixels = batch["pixel_values"][image : image + 1].clone()
            image += 1
        rows.append(
            EncodedRow(batch["input_ids"][r, :n].clone(), batch["labels"][r, :n].clone(), pixels)
        )
    return rows


def _nbytes(row: EncodedRow) -> int:
    tensors = [row.input_ids, row.labels]
    if row.pixel_values is not None:
        tensors.append(row.pixel_values)
    return sum(t.numel() * t.element_size() for t in tensors)
