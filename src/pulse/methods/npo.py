"""Negative preference optimization (Zhang et al. 2024)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pulse.methods.base import answer_tokens
from pulse.methods.losses import npo_loss, sequence_logprob
from pulse.methods.registry import NonNegative, Positive, doc, register
from pulse.methods.terms import RetainKind, retain_uses, with_retain


@dataclass(frozen=True)
class NPOParams:
    beta: Positive = field(
        default=0.1, metadata=doc("β, inverse temperature of the log-likelihood ratio")
    )
    retain: RetainKind = field(
        default="none",
        metadata=doc("retain term: ℓ(B_r) (nll), KL(p_ref ‖ p_θ) on B_r (kl) or none"),
    )
    retain_weight: NonNegative = field(default=1.0, metadata=doc("weight of the retain term"))


@register(
    "npo",
    NPOParams,
    uses=lambda p: ("forget", *retain_uses(p.retain, p.retain_weight)),
    cached=("forget",),
)
def npo(model, batch, ctx, p: NPOParams):
    """NPO: L = −(2/β)·mean logσ(−β·r) [+ w·retain term], r = logπ_θ(y|x) − logπ_ref(y|x).

    r is per sequence (sum over answer tokens), never per logit. logπ_ref over the fixed forget
    set is computed once per request (adapter disabled) and looked up by example index.
    """
    current = sequence_logprob(answer_tokens(model, batch.sub("forget"))[0])
    ratio = current - ctx.reference_logprobs(batch, "forget")
    loss = npo_loss(ratio, p.beta)
    logs = {"npo": loss.detach(), "forget_logratio": ratio.detach().mean()}
    return with_retain(loss, logs, model, batch, ctx, p.retain, p.retain_weight)
