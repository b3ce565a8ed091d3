"""DPO with a refusal as the chosen answer and the true answer as the rejected one."""

from __future__ import annotations

from dataclasses import dataclass, field

from pulse.methods.base import answer_tokens
from pulse.methods.losses import dpo_loss, sequence_logprob
from pulse.methods.registry import NonNegative, Positive, doc, register
from pulse.methods.terms import RetainKind, retain_uses, with_retain


@dataclass(frozen=True)
class IdkDPOParams:
    beta: Positive = field(
        default=0.1, metadata=doc("β, inverse temperature of the preference margin")
    )
    retain: RetainKind = field(
        default="nll",
        metadata=doc("retain term: ℓ(B_r) (nll), KL(p_ref ‖ p_θ) on B_r (kl) or none"),
    )
    retain_weight: NonNegative = field(default=1.0, metadata=doc("weight of the retain term"))


@register(
    "idk_dpo",
    IdkDPOParams,
    uses=lambda p: ("forget", "idk", *retain_uses(p.retain, p.retain_weight)),
    cached=("forget", "idk"),
)
def idk_dpo(model, batch, ctx, p: IdkDPOParams):
    """IdkDPO: DPO with the refusal as chosen answer and the true answer as rejected.

    L = −mean logσ(β·([logπ_θ(y_idk) − logπ_ref(y_idk)] − [logπ_θ(y_f) − logπ_ref(y_f)]))
    [+ w·retain term]. y_idk: the refusal for the forget question; y_f: its true answer. Both
    reference log-probs are over the fixed forget set, computed once per request.
    """
    chosen = sequence_logprob(answer_tokens(model, batch.sub("idk"))[0])
    rejected = sequence_logprob(answer_tokens(model, batch.sub("forget"))[0])
    chosen_ratio = chosen - ctx.reference_logprobs(batch, "idk")
    rejected_ratio = rejected - ctx.reference_logprobs(batch, "forget")
    loss = dpo_loss(chosen_ratio, rejected_ratio, p.beta)
    logs = {
        "dpo": loss.detach(),
        "chosen_logratio": chosen_ratio.detach().mean(),
        "rejected_logratio": rejected_ratio.detach().mean(),
    }
    return with_retain(loss, logs, model, batch, ctx, p.retain, p.retain_weight)
