"""SimNPO: reference-free, length-normalised NPO."""

from __future__ import annotations

from dataclasses import dataclass, field

from pulse.methods.base import answer_tokens
from pulse.methods.losses import answer_lengths, sequence_logprob, simnpo_loss
from pulse.methods.registry import NonNegative, Positive, doc, register
from pulse.methods.terms import RetainKind, retain_uses, with_retain


@dataclass(frozen=True)
class SimNPOParams:
    beta: Positive = field(
        default=2.5, metadata=doc("β, inverse temperature (2.5-4.5 in the paper)")
    )
    margin: NonNegative = field(default=0.0, metadata=doc("γ_m, reward margin (>= 0)"))
    retain: RetainKind = field(
        default="none",
        metadata=doc("retain term: ℓ(B_r) (nll), KL(p_ref ‖ p_θ) on B_r (kl) or none"),
    )
    retain_weight: NonNegative = field(default=1.0, metadata=doc("weight of the retain term"))


@register(
    "simnpo", SimNPOParams, uses=lambda p: ("forget", *retain_uses(p.retain, p.retain_weight))
)
def simnpo(model, batch, ctx, p: SimNPOParams):
    """SimNPO: L = −(2/β)·mean logσ(−(β/|y|)·logπ_θ(y|x) − γ_m) [+ w·retain term].

    |y| is the number of answer tokens of the row; no reference model.
    """
    answers = answer_tokens(model, batch.sub("forget"))[0]
    seq = sequence_logprob(answers)
    loss = simnpo_loss(seq, answer_lengths(answers), p.beta, p.margin)
    logs = {"simnpo": loss.detach(), "forget_logprob": seq.detach().mean()}
    return with_retain(loss, logs, model, batch, ctx, p.retain, p.retain_weight)
