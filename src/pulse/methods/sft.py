"""Supervised fine-tuning as a method of the shared loop (not an unlearning method: it is not
registered, so ``pulse methods`` does not list it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pulse.methods.base import answer_tokens
from pulse.methods.losses import answer_lengths, mean_nll, sequence_logprob
from pulse.methods.registry import Method, make_spec

Reduction = Literal["token", "sequence"]


@dataclass(frozen=True)
class SFTParams:
    """``reduction``: ``token`` averages the NLL over all answer tokens of the batch (long
    answers weigh more); ``sequence`` averages each example's mean token NLL, so a one-letter
    answer counts as much as a paragraph."""

    reduction: Reduction = "token"


def sft_loss(model, batch, ctx, p: SFTParams):
    """Supervised fine-tuning on the training examples (carried in the ``forget`` slot):
    token:    L = −(1/N) Σ_t log p(y_t | ·) over the batch's N answer tokens;
    sequence: L = −(1/B) Σ_i (1/|y_i|) log π(y_i | x_i).

    Data parallel, each process holds a shard of the step's batch and the gradients are
    averaged over the W processes: the token mean then divides by the answer tokens of all
    shards together (N summed over the processes, times W for the averaging), so a step's
    gradient is one process's on the whole batch whatever the shards' lengths."""
    answers = answer_tokens(model, batch.sub("forget"))[0]
    if p.reduction == "sequence":
        return -(sequence_logprob(answers) / answer_lengths(answers)).mean(), {}
    return mean_nll(answers), {}  # over every process's shard (losses.token_mean)


def sft(reduction: Reduction = "token") -> Method:
    return Method(make_spec("sft", SFTParams, sft_loss), SFTParams(reduction))


SFT = sft()
