"""Gradient ascent."""

from __future__ import annotations

from dataclasses import dataclass

from pulse.methods.registry import register
from pulse.methods.terms import nll


@dataclass(frozen=True)
class GAParams:
    """GA has no hyper-parameters besides the loop's (learning rate, steps)."""


@register("ga", GAParams)
def ga(model, batch, ctx, p: GAParams):
    """Gradient ascent (GA): L = −ℓ(B_f).

    Maximises the mean NLL of the forget answers. Unbounded below: it collapses the model if run
    long (watch the divergence guard and evaluate along the way).
    """
    forget = nll(model, batch, "forget")
    return -forget, {"forget_nll": forget.detach()}
