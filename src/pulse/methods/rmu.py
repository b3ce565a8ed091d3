"""Representation misdirection for unlearning (RMU, Li et al. 2024, WMDP)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from pulse.errors import ConfigError
from pulse.methods.base import MethodContext, _keeps_logits, model_inputs
from pulse.methods.losses import masked_mse, prediction_mask
from pulse.methods.registry import NonNegative, NonNegativeInt, Positive, doc, register


@dataclass(frozen=True)
class RMUParams:
    layer: NonNegativeInt = field(
        default=0,
        metadata=doc("decoder layer whose output is steered, 1..L (0: L // 4, at least 1)"),
    )
    steering: Positive = field(default=20.0, metadata=doc("c, norm of the control vector c·u"))
    alpha: NonNegative = field(default=100.0, metadata=doc("α, weight of the retain MSE"))


def _hidden(model: nn.Module, sub, layer: int) -> tuple[Tensor, Tensor]:
    """The language model's hidden state after decoder layer ``layer`` ``[B, T, d]`` and the
    answer-predicting positions ``[B, T]``."""
    kwargs = {"logits_to_keep": 1} if _keeps_logits(model) else {}  # skip the vocab projection
    states = model(**model_inputs(sub), output_hidden_states=True, **kwargs).hidden_states
    n_layers = len(states) - 1  # states[0] is the embedding output
    chosen = layer or max(1, n_layers // 4)
    if not 1 <= chosen <= n_layers:
        raise ConfigError(
            f"method 'rmu', parameter 'layer': expected 1..{n_layers} (the language model has "
            f"{n_layers} layers), got {layer}"
        )
    return states[chosen], prediction_mask(sub["labels"])


def _direction(ctx: MethodContext, like: Tensor) -> Tensor:
    """The fixed random unit vector u of this request (uniform entries, normalised, as in the
    WMDP code), drawn once from the request's seed."""
    if "rmu_direction" not in ctx.state:
        generator = torch.Generator().manual_seed(ctx.seed)
        u = torch.rand(like.shape[-1], generator=generator)
        ctx.state["rmu_direction"] = u / u.norm()
    return ctx.state["rmu_direction"].to(like.device, like.dtype)


@register("rmu", RMUParams, uses=("forget", "retain"))
def rmu(model, batch, ctx, p: RMUParams):
    """RMU: L = mean_f ‖h_θ(x_f) − c·u‖²/d + α·mean_r ‖h_θ(x_r) − h_ref(x_r)‖²/d.

    h is the hidden state after decoder layer ``layer`` of the language model, at the
    answer-predicting positions only; u a fixed random unit vector, c the steering coefficient;
    h_ref the reference model's (adapter disabled). Unlike WMDP, which trains three MLPs, the
    parameters that move are the update scope's (LoRA); all layers are run (no truncation).
    """
    h_forget, mask_forget = _hidden(model, batch.sub("forget"), p.layer)
    forget = masked_mse(h_forget, p.steering * _direction(ctx, h_forget), mask_forget)
    h_retain, mask_retain = _hidden(model, batch.sub("retain"), p.layer)
    with ctx.reference() as ref:
        h_ref, _ = _hidden(ref, batch.sub("retain"), p.layer)
    retain = masked_mse(h_retain, h_ref, mask_retain)
    return forget + p.alpha * retain, {"forget_mse": forget.detach(), "retain_mse": retain.detach()}
