"""What one evaluation item and one batch may cost, in tokens.

- **An item must fit the model's context.** Its prompt (the image's tokens included) and what
  is scored or generated after it must fit the model's ``max_position_embeddings``; an item
  that does not is refused, in one line naming it, before any forward of its evaluation. It is
  not truncated: cut from the left the prompt loses its image and the question's start, cut
  from the right its options: either way another question would be scored.
- **A batch's memory is bounded by the batch.** Rows are sorted by length; a batch holds at
  most ``rows`` rows and at most ``rows x ROW_TOKENS`` padded tokens (rows x its longest row),
  so one long item makes its batch shorter instead of every row as long as it. A row longer
  than that budget runs alone (the context bounds it).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from torch import nn

from pulse.errors import DataError
from pulse.models.chat import ChatExample, encode_prompts, format_prompt

# Padded tokens a batch may hold per row of its batch size: the evaluated benchmarks' rows
# (LLaVA-1.5: 576 image tokens and a question) stay under it, so their batches are unchanged.
ROW_TOKENS = 1024

# Held by the processor object itself: an id() could be reused by another model's processor.
_OVERHEAD: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def context_length(model: nn.Module) -> int | None:
    """The model's context in tokens (its language model's ``max_position_embeddings``), or
    ``None`` when its config does not say."""
    config = getattr(model, "config", None)
    for part in (getattr(config, "text_config", None), config):
        n = getattr(part, "max_position_embeddings", None)
        if isinstance(n, int) and n > 0:
            return n
    return None


def image_overhead(processor: Any) -> int:
    """Tokens an image adds to a prompt (placeholder expanded; measured once per processor on
    a small image: exact for processors that resize every image to one size)."""
    if processor not in _OVERHEAD:
        from PIL import Image

        with_image = ChatExample("?", image=Image.new("RGB", (32, 32)))
        longer = encode_prompts(processor, [with_image])["input_ids"].shape[1]
        plain = encode_prompts(processor, [ChatExample("?")])["input_ids"].shape[1]
        _OVERHEAD[processor] = max(0, longer - plain)
    return _OVERHEAD[processor]


def prompt_tokens(processor: Any, questions: Sequence[str], has_image: Sequence[bool]) -> list[int]:
    """Each prompt's length in tokens as the model sees it (chat template and image tokens)."""
    if not questions:
        return []
    tokenizer = getattr(processor, "tokenizer", processor)
    texts = [format_prompt(processor, q, has_image=False) for q in questions]
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    extra = image_overhead(processor) if any(has_image) else 0
    return [n + (extra if image else 0) for n, image in zip(lengths, has_image, strict=True)]


def check_context(
    model: nn.Module, names: Sequence[str], lengths: Sequence[int], after: str
) -> None:
    """Refuse the first item whose ``lengths`` (prompt and what follows it, ``after`` saying
    what that is) exceed the model's context, naming it."""
    context = context_length(model)
    if context is None:
        return
    for name, n in zip(names, lengths, strict=True):
        if n > context:
            raise DataError(
                f"item {name}",
                f"its prompt (image tokens included) and {after} hold {n} tokens, more than "
                f"the model's context of {context}: shorten it or leave it out",
            )


def token_batches(
    order: Sequence[int], lengths: Sequence[int], rows: int, weights: Sequence[int] | None = None
) -> list[list[int]]:
    """Consecutive entries of ``order`` (sorted by length) in batches of at most ``rows`` rows
    and ``rows x ROW_TOKENS`` padded tokens; an entry counts ``weights[i]`` rows (an item's
    options), at least one entry per batch."""
    if rows < 1:
        raise ValueError(f"batch size must be a positive integer, got {rows}")
    budget = rows * ROW_TOKENS
    batches: list[list[int]] = []
    current: list[int] = []
    count = longest = 0
    for i in order:
        weight = weights[i] if weights is not None else 1
        width = max(longest, lengths[i])
        if current and (count + weight > rows or (count + weight) * width > budget):
            batches.append(current)
            current, count, width = [], 0, lengths[i]
        current.append(i)
        count += weight
        longest = width
    if current:
        batches.append(current)
    return batches
