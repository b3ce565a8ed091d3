"""What every model-driven evaluator shares: length-sorted batches, eval mode, a progress bar.

Batches are formed after sorting by ``(has image, prompt tokens)``: image rows carry the same
block of image tokens (576 for LLaVA-1.5), so a text-only row batched with image rows would be
padded by that whole block. Within each group, similar lengths go together so batches carry
little padding. Results are always given back in input order.

:func:`prefetch` encodes the next batch (tokenizer, image processor: CPU work that mostly releases
the GIL) in a worker thread while an accelerator runs the model on the current one. Only the
order of work changes, never a result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
from torch import nn

T = TypeVar("T")
R = TypeVar("R")


def tokenizer_of(processor: Any) -> Any:
    return getattr(processor, "tokenizer", processor)


def length_order(processor: Any, prompts: Sequence[str], has_image: Sequence[bool]) -> list[int]:
    """Indices sorted by ``(has image, text tokens, index)``; one tokenizer call for all."""
    if not prompts:
        return []
    lengths = [len(ids) for ids in tokenizer_of(processor)(list(prompts))["input_ids"]]
    return order_by_length(lengths, has_image)


def order_by_length(lengths: Sequence[int], has_image: Sequence[bool]) -> list[int]:
    """Indices sorted by ``(has image, length, index)``: batches of alike lengths pad little."""
    return sorted(range(len(lengths)), key=lambda i: (bool(has_image[i]), lengths[i], i))


def chunks(order: Sequence[int], size: int) -> list[list[int]]:
    if size < 1:
        raise ValueError(f"batch size must be a positive integer, got {size}")
    return [list(order[k : k + size]) for k in range(0, len(order), size)]


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def overlap_default(device: torch.device) -> bool:
    """Encode ahead in a thread only when the model is not on the CPU (see :func:`prefetch`)."""
    return device.type != "cpu"


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Dropout off while evaluating; the caller's train / eval state comes back afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def progress(items: Iterable[T], enabled: bool, desc: str, total: int | None = None) -> Iterable[T]:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="batch", total=total, leave=False)


def prefetch(
    encode: Callable[[T], R], batches: Sequence[T], *, overlap: bool = True
) -> Iterator[tuple[T, R]]:
    """``(batch, encode(batch))`` in order; with ``overlap``, ``encode`` of batch k + 1 runs in
    one worker thread while the caller works on batch k.

    Worth it when the model runs on an accelerator (the CPU is idle while it computes); on a
    CPU the forward already uses every core, so callers pass ``overlap=False`` there. The
    caller must not use the tokenizer inside the loop: a fast tokenizer's padding state is
    shared, and two threads touching it fail with "Already borrowed".
    """
    if not batches:
        return
    if not overlap:
        for batch in batches:
            yield batch, encode(batch)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pulse-encode") as pool:
        pending = pool.submit(encode, batches[0])
        for k, batch in enumerate(batches):
            encoded = pending.result()
            if k + 1 < len(batches):
                pending = pool.submit(encode, batches[k + 1])
            yield batch, encoded
