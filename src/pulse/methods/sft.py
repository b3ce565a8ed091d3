"""Supervised fine-tuning as a method of the shared loop (not an unlearning method: it is not
registered, so ``pulse methods`` does not list it)."""

from __future__ import annotations

from dataclasses import dataclass

from pulse.methods.registry import Method, make_spec
from pulse.methods.terms import nll


@dataclass(frozen=True)
class SFTParams:
    """No hyper-parameters besides the loop's."""


def sft_loss(model, batch, ctx, p: SFTParams):
    """Supervised fine-tuning: L = ℓ(B), B the training examples (the loop's primary data,
    carried in the ``forget`` slot)."""
    loss = nll(model, batch, "forget")
    return loss, {}


SFT = Method(make_spec("sft", SFTParams, sft_loss), SFTParams())
