"""The model-independent work of scoring, kept across the model states of a run.

A protocol run scores the same questions after every request: the same prompts tokenized, the
same images through the image processor, the same batches; only the model changes. On the
tiny model that encoding is about 40 % of an evaluation. :class:`EncodingCache` keeps what the
scorers compute from the processor and the items alone (the option-text scorer's token plan,
each batch's processor output) under a key made of the processor's fingerprint and the items'
content, so a second model state with the same processor and questions skips it. Tensors are
kept up to ``max_bytes``; past that a batch is encoded again each time (the scores are the same
either way). A lookup hands out its own mapping, so a caller that moves inputs to a device
(``BatchFeature.to`` replaces its tensors in place) leaves the stored ones on the CPU.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from transformers import BatchFeature

from pulse.data.schema import QAItem
from pulse.models.encoded import DEFAULT_MAX_BYTES, ByteBudget, nbytes

V = TypeVar("V")


class EncodingCache:
    """Values computed from a processor and items only, by key (see the module docstring)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.budget = ByteBudget(max_bytes)
        self.hits = 0
        self._values: dict[Hashable, Any] = {}
        self._scopes: dict[Hashable, int] = {}
        self._last: tuple[Any, str] | None = None

    @property
    def stored_bytes(self) -> int:
        return self.budget.used

    def scope(self, processor: Any, items: Sequence[QAItem], kind: str) -> int:
        """A small key standing for (``kind``, the processor, the items' prompts and images)."""
        key = (kind, self._fingerprint(processor), tuple(_item_key(item) for item in items))
        return self._scopes.setdefault(key, len(self._scopes))

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The value stored under ``key``, else ``compute()`` (stored if the budget allows)."""
        if key in self._values:
            self.hits += 1
            return _fresh(self._values[key])
        value = compute()
        if not self.budget.take(nbytes(value)):
            return value
        self._values[key] = value
        return _fresh(value)

    def of(self, processor: Any, key: Hashable, compute: Callable[[], V]) -> V:
        """:meth:`get` for a value that also depends on ``processor`` (its fingerprint joins
        the key)."""
        return self.get((self._fingerprint(processor), key), compute)

    def _fingerprint(self, processor: Any) -> str:
        # The last processor's fingerprint is remembered: one evaluation scores several item
        # lists with it, and a 32k vocabulary need not be hashed for each. Only the last is
        # kept, so a long run does not hold every processor it loaded.
        if self._last is None or self._last[0] is not processor:
            self._last = (processor, processor_fingerprint(processor))
        return self._last[1]


def processor_fingerprint(processor: Any) -> str:
    """A hash of what encoding depends on: the vocabulary, special tokens, chat template and
    image processor settings (two loads of one checkpoint give the same fingerprint)."""
    tokenizer = getattr(processor, "tokenizer", processor)
    image_processor = getattr(processor, "image_processor", None)
    described = {
        "class": type(processor).__name__,
        "vocab": sorted(tokenizer.get_vocab().items()),
        "special": {k: str(v) for k, v in tokenizer.special_tokens_map.items()},
        "template": getattr(processor, "chat_template", None)
        or getattr(tokenizer, "chat_template", None),
        "image": image_processor.to_dict() if image_processor is not None else None,
        "processor": {
            k: getattr(processor, k, None)
            for k in ("patch_size", "num_additional_image_tokens", "vision_feature_select_strategy")
        },
    }
    text = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _item_key(item: QAItem) -> tuple[Any, ...]:
    # What a prompt is made of (the gold answer is not: the records take it from the items).
    return (item.question, tuple(sorted(item.options.items())), item.meta.get("hint"), item.image)


def _fresh(value: Any) -> Any:
    if isinstance(value, BatchFeature):
        return BatchFeature(dict(value))
    if isinstance(value, tuple):
        return tuple(_fresh(v) for v in value)
    return value
