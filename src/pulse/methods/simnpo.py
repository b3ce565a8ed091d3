"""SimNPO: reference-free, length-normalised NPO."""

from __future__ import annotations

from dataclasses import dataclass, field

from pulse.methods.base import answer_tokens
from pulse.methods.losses import answer_lengths, sequence_logprob, simnpo_loss
from pulse.methods.registry import check, doc, register
from pulse.methods.terms import RetainKind, retain_uses, with_retain


@dataclass(frozen=True)
class SimNPOParams:
    beta: float = field(default=2.5, metadata=doc("β, inverse temperature (2.5-4.5 in the paper)"))
    margin: float = field(default=0.0, metadata=doc("γ_m, reward margin (>= 0)"))
    retain: RetainKind = field(
        default="none",
        metadata=doc("retain term: ℓ(B_r) (nll), KL(p_ref ‖ p_θ) on B_r (kl) or none"),
    )
    retain_weight: float = field(default=1.0, metadata=doc("weight of the retain term"))

    def __post_init__(self) -> None:
        check(self.beta > 0, "simnpo", "beta", "a number > 0", self.beta)
        check(self.margin >= 0, "simnpo", "margin", "a number >= 0", self.margin)
        check(
            self.retain_weight >= 0, "simnpo", "retain_weight", "a number >= 0", self.retain_weight
        )


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
