"""Gradient ascent with a KL term on retain data (PULSE's GA+KLR)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pulse.methods.registry import NonNegative, doc, register
from pulse.methods.terms import nll, retain_kl


@dataclass(frozen=True)
class GAKLParams:
    kl_weight: NonNegative = field(
        default=1.0, metadata=doc("λ, weight of KL(p_ref ‖ p_θ) on retain answer tokens")
    )


@register("ga_kl", GAKLParams, uses=("forget", "retain"))
def ga_kl(model, batch, ctx, p: GAKLParams):
    """GA + KL on retain (GA+KLR): L = −ℓ(B_f) + λ·KL(p_ref ‖ p_θ) on B_r.

    The KL is token-level over retain answer tokens; p_ref is the reference model (the adapter
    disabled), run without gradients.
    """
    forget = nll(model, batch, "forget")
    kl = retain_kl(model, batch, ctx)
    return -forget + p.kl_weight * kl, {"forget_nll": forget.detach(), "retain_kl": kl.detach()}
