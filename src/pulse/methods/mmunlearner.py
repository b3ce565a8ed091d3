"""MMUnlearner (Huo et al. 2025): gradient ascent through a Fisher-saliency parameter mask."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from pulse.methods.base import MethodContext, answer_tokens
from pulse.methods.losses import mean_nll
from pulse.methods.registry import NonNegative, PositiveInt, doc, register
from pulse.methods.terms import nll


@dataclass(frozen=True)
class MMUnlearnerParams:
    fisher_batches: PositiveInt = field(
        default=4, metadata=doc("batches of forget and of retain data for the importances")
    )
    retain_weight: NonNegative = field(
        default=0.0, metadata=doc("α, weight of the retain NLL (0: pure masked GA)")
    )


def fisher_importance(model: nn.Module, batches: Iterable, params: list[Tensor]) -> list[Tensor]:
    """Σ over batches of (∂ℓ(B)/∂θ)², element-wise: the empirical Fisher diagonal, from batch
    gradients (not per-example ones, which would cost one backward per example)."""
    importance = [torch.zeros_like(q, dtype=torch.float32) for q in params]
    was_training = model.training
    model.eval()
    try:
        for sub in batches:
            model.zero_grad(set_to_none=True)
            mean_nll(answer_tokens(model, sub)[0]).backward()
            for acc, q in zip(importance, params, strict=True):
                if q.grad is not None:
                    acc += q.grad.float() ** 2
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return importance


def saliency_mask(model: nn.Module, ctx: MethodContext, p: MMUnlearnerParams) -> Callable[[], None]:
    """Compute the mask once per request and apply it to every gradient through tensor hooks.

    Entry kept where its forget importance exceeds its retain ("preserve") importance. With a
    fresh LoRA adapter (B = 0) the A matrices get no gradient, so both importances are 0 and A
    stays frozen at its random init: only B (and any fully trained module) moves. The mask acts
    on gradients; with weight decay > 0 masked entries would still decay (the default is 0).
    Not for ZeRO-3 / FSDP sharded parameters (hooks see shards, not whole tensors).
    """
    params = [q for q in model.parameters() if q.requires_grad]
    forget = fisher_importance(model, ctx.batches("forget", p.fisher_batches), params)
    retain = fisher_importance(model, ctx.batches("retain", p.fisher_batches), params)
    handles, kept, total = [], 0, 0
    for q, f, r in zip(params, forget, retain, strict=True):
        mask = (f > r).to(q.dtype)
        kept += int(mask.sum())
        total += mask.numel()
        handles.append(q.register_hook(lambda grad, mask=mask: grad * mask))
    ctx.state["mmunlearner_kept_fraction"] = kept / max(total, 1)

    def remove() -> None:
        for handle in handles:
            handle.remove()

    return remove


@register(
    "mmunlearner",
    MMUnlearnerParams,
    uses=lambda p: ("forget", "retain") if p.retain_weight > 0 else ("forget",),
    prepare=saliency_mask,
    requires=("forget", "retain"),
)
def mmunlearner(model, batch, ctx, p: MMUnlearnerParams):
    """MMUnlearner: L = −ℓ(B_f) + α·ℓ(B_r), gradients masked by Fisher saliency.

    Before training, F_f = Σ (∇ℓ(B_f))² and F_r = Σ (∇ℓ(B_r))² over ``fisher_batches`` batches
    of forget and retain (preserve) data; only entries with F_f > F_r receive gradient. Default
    α = 0 is pure gradient ascent through the mask.
    """
    forget = nll(model, batch, "forget")
    logs = {"forget_nll": forget.detach()}
    if p.retain_weight == 0:
        return -forget, logs
    retain = nll(model, batch, "retain")
    return -forget + p.retain_weight * retain, {**logs, "retain_nll": retain.detach()}
