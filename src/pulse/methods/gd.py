"""Gradient difference."""

from __future__ import annotations

from dataclasses import dataclass, field

from pulse.methods.registry import NonNegative, doc, register
from pulse.methods.terms import nll


@dataclass(frozen=True)
class GDParams:
    forget_weight: NonNegative = field(
        default=1.0, metadata=doc("γ, weight of the forget NLL (ascended)")
    )
    retain_weight: NonNegative = field(
        default=1.0, metadata=doc("α, weight of the retain NLL (descended)")
    )


@register("gd", GDParams, uses=("forget", "retain"))
def gd(model, batch, ctx, p: GDParams):
    """Gradient difference (GD): L = −γ·ℓ(B_f) + α·ℓ(B_r)."""
    forget = nll(model, batch, "forget")
    retain = nll(model, batch, "retain")
    loss = -p.forget_weight * forget + p.retain_weight * retain
    return loss, {"forget_nll": forget.detach(), "retain_nll": retain.detach()}
