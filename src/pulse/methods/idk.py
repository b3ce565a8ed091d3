"""Preference optimization toward refusals (PO / IdkPO)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pulse.methods.registry import NonNegative, doc, register
from pulse.methods.terms import RetainKind, nll, retain_uses, with_retain


@dataclass(frozen=True)
class IdkParams:
    retain: RetainKind = field(
        default="nll",
        metadata=doc("retain term: ℓ(B_r) (nll), KL(p_ref ‖ p_θ) on B_r (kl) or none"),
    )
    retain_weight: NonNegative = field(default=1.0, metadata=doc("weight of the retain term"))


@register("idk", IdkParams, uses=lambda p: ("idk", *retain_uses(p.retain, p.retain_weight)))
def idk(model, batch, ctx, p: IdkParams):
    """PO / IdkPO: L = ℓ(B_idk) [+ w·retain term], fine-tuning toward refusal answers.

    B_idk holds the forget questions (and images) answered with a refusal ("I don't know.",
    ...) chosen per forget example by a seeded generator.
    """
    refusal = nll(model, batch, "idk")
    logs = {"idk_nll": refusal.detach()}
    return with_retain(refusal, logs, model, batch, ctx, p.retain, p.retain_weight)
