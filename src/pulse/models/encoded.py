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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import torch
from PIL import Image
from torch import Tensor
from transformers import BatchFeature

from pulse.models.chat import IGNORE_INDEX, ChatCollator
from pulse.models.packing import PACKABLE_KEYS, image_rows

# Enough for the tiny model's corpus or evaluation many times over (a 32 px image is 12 KiB);
# with 336 px images (1.3 MiB each) ~750 of them, the rest encoded per batch. Training and
# evaluation keep one such bound each.
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
            size = nbytes(row)
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


def _splits(chat: ChatCollator, batch: BatchFeature) -> bool:
    """Whether ``batch`` has the collator's LLaVA-1.5 layout (see ``PACKABLE_KEYS``)."""
    if not set(batch.keys()) <= PACKABLE_KEYS:
        return False
    if "pixel_values" not in batch:
        return True
    if chat.image_token_id is None:
        return False
    has_image = image_rows(batch["input_ids"], chat.image_token_id)
    return batch["pixel_values"].shape[0] == int(has_image.sum())


def _split(chat: ChatCollator, batch: BatchFeature) -> list[EncodedRow]:
    if "pixel_values" in batch:
        has_image = image_rows(batch["input_ids"], chat.image_token_id).tolist()
    else:
        has_image = [False] * len(batch["input_ids"])
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


def nbytes(value: Any, seen: set[int] | None = None) -> int:
    """Bytes of the tensors and decoded images in ``value`` (nested in mappings, sequences and
    dataclasses), each object counted once: an evaluation plan repeats an item's image for each
    of its options."""
    seen = set() if seen is None else seen
    if isinstance(value, Tensor | Image.Image):
        if id(value) in seen:
            return 0
        seen.add(id(value))
        if isinstance(value, Image.Image):
            return value.width * value.height * len(value.getbands())
        return value.numel() * value.element_size()
    if isinstance(value, Mapping):
        return sum(nbytes(v, seen) for v in value.values())
    if isinstance(value, tuple | list):
        return sum(nbytes(v, seen) for v in value)
    if is_dataclass(value):
        return sum(nbytes(getattr(value, f.name), seen) for f in fields(value))
    return 0
