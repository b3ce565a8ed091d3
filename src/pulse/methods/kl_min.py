"""MLLMU-Bench's KL variant: forget steps and retain steps alternate."""

from __future__ import annotations

from dataclasses import dataclass, field

from pulse.methods.base import answer_tokens
from pulse.methods.losses import kl_ref_theta, mean_nll
from pulse.methods.registry import NonNegative, doc, register
from pulse.methods.terms import nll


@dataclass(frozen=True)
class KLMinParams:
    kl_weight: NonNegative = field(
        default=1.0, metadata=doc("weight of KL(p_ref ‖ p_θ) in the retain steps")
    )


@register("kl_min", KLMinParams, uses=("forget", "retain"))
def kl_min(model, batch, ctx, p: KLMinParams):
    """KL_Min (MLLMU-Bench): forget steps L = −ℓ(B_f); retain steps L = ℓ(B_r) + KL(p_ref ‖ p_θ).

    Steps alternate by optimizer step (even: forget, odd: retain), so every micro-batch of one
    accumulated step is of the same kind. Each step pairs a forget batch with a retain batch;
    the sub-batch not used this step is ignored.
    """
    if ctx.step % 2 == 0:
        forget = nll(model, batch, "forget")
        return -forget, {"forget_nll": forget.detach()}
    sub = batch.sub("retain")
    current = answer_tokens(model, sub)[0]  # one forward serves both terms
    retain = mean_nll(current)
    kl = kl_ref_theta(ctx.reference_answers(sub), current)
    return retain + p.kl_weight * kl, {"retain_nll": retain.detach(), "retain_kl": kl.detach()}
