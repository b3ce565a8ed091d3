"""The attention kernel for bf16 training on a CPU.

Under CPU bf16 autocast the matrix products run on the bf16 dot-product instructions (~3.5x
the float32 rate on an AVX512-BF16 core), but PyTorch's CPU flash-attention backward in bf16 is
slower than in float32: it ate the whole gain (benchmarks/cpu_bf16.py). The eager attention
(two matrix products and a float32 softmax under autocast) keeps it, so a CPU bf16 run trains
with eager attention and gives the model its own implementation back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from pulse.models.adapters import base_model

CPU_BF16_ATTENTION = "eager"


@contextmanager
def cpu_bf16_attention(model: nn.Module | None, enabled: bool) -> Iterator[None]:
    """Run ``model`` with eager attention inside the block when ``enabled`` (CPU bf16
    training); its previous implementation is restored on the way out, whatever happens."""
    top = base_model(model) if model is not None else None
    before = getattr(getattr(top, "config", None), "_attn_implementation", None)
    switch = enabled and hasattr(top, "set_attn_implementation") and before != CPU_BF16_ATTENTION
    if switch:
        top.set_attn_implementation(CPU_BF16_ATTENTION)
    try:
        yield
    finally:
        if switch:
            top.set_attn_implementation(before)
