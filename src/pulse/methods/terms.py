"""Terms that run the model, shared by several methods: the forget NLL and the retain term."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from pulse.methods.base import MethodContext, UnlearnBatch, answer_tokens
from pulse.methods.losses import kl_ref_theta, mean_nll

RetainKind = Literal["none", "nll", "kl"]


def nll(model: nn.Module, batch: UnlearnBatch, name: str) -> Tensor:
    """ℓ of sub-batch ``name`` under the model being trained."""
    return mean_nll(answer_tokens(model, batch.sub(name))[0])


def retain_kl(model: nn.Module, batch: UnlearnBatch, ctx: MethodContext) -> Tensor:
    """KL(p_ref ‖ p_θ) over the retain answer tokens (reference: adapter disabled)."""
    current = answer_tokens(model, batch.sub("retain"))[0]
    return kl_ref_theta(ctx.reference_answers(batch.sub("retain")), current)


def retain_term(
    model: nn.Module, batch: UnlearnBatch, ctx: MethodContext, kind: RetainKind
) -> tuple[Tensor | None, dict[str, Tensor]]:
    """The optional retain term: ℓ(B_r) (``nll``), KL(p_ref ‖ p_θ) on B_r (``kl``) or none."""
    if kind == "none":
        return None, {}
    if kind == "nll":
        value = nll(model, batch, "retain")
        return value, {"retain_nll": value.detach()}
    value = retain_kl(model, batch, ctx)
    return value, {"retain_kl": value.detach()}


def retain_uses(kind: RetainKind, weight: float) -> tuple[str, ...]:
    """The retain sub-batch when the retain term is on."""
    return () if kind == "none" or weight == 0 else ("retain",)


def with_retain(
    loss: Tensor,
    logs: dict[str, Tensor],
    model: nn.Module,
    batch: UnlearnBatch,
    ctx: MethodContext,
    kind: RetainKind,
    weight: float,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``loss + weight · retain term`` (unchanged when the kind is ``none`` or the weight 0)."""
    if kind == "none" or weight == 0:
        return loss, logs
    value, extra = retain_term(model, batch, ctx, kind)
    return loss + weight * value, {**logs, **extra}
