"""Loss pieces shared by every method, written once. They count answer tokens only.

The answer tokens of a sub-batch are the positions whose *next* token is labelled
(``labels != -100`` shifted by one, as in causal LM training): never prompt, image placeholder
or padding positions. :class:`AnswerTokens` holds the logits at those positions ``[N, V]``, the
token each one must predict ``[N]`` and its row ``[N]``, in row-major order. Every function
below takes them, so the mask is applied in exactly one place (:func:`select_answers`, or the
model-side equivalent :func:`pulse.methods.base.answer_tokens`).

Notation of the docstrings: ℓ(B) is the mean NLL over all answer tokens of the batch B (token
mean, as Hugging Face's causal LM loss), logπ(y|x) the sum of answer-token log-probs of one row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from pulse.errors import ModelError
from pulse.models.chat import IGNORE_INDEX


@dataclass
class AnswerTokens:
    """Logits at the answer-predicting positions of a sub-batch of ``n_rows`` rows."""

    logits: Tensor  # [N, V]
    targets: Tensor  # [N]
    rows: Tensor  # [N], the row of each token
    n_rows: int

    def __post_init__(self) -> None:
        if self.targets.numel() == 0:
            raise ModelError("a batch without answer tokens: nothing for a loss to count")


def prediction_mask(labels: Tensor) -> Tensor:
    """``[B, T]`` bool: True where the position predicts a labelled (answer) token."""
    mask = torch.zeros_like(labels, dtype=torch.bool)
    mask[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    return mask


def select_answers(logits: Tensor, labels: Tensor) -> AnswerTokens:
    """Answer tokens from full logits ``[B, T, V]`` and labels ``[B, T]``."""
    mask = prediction_mask(labels)
    return AnswerTokens(
        logits=logits[mask],
        targets=labels[:, 1:][mask[:, :-1]],
        rows=mask.nonzero()[:, 0],
        n_rows=labels.shape[0],
    )


def token_logprobs(a: AnswerTokens) -> Tensor:
    """log p(y_t | y_<t, x) of every answer token ``[N]``, in float32 (bf16 logits lose
    too much in a log-sum-exp over a 32k vocabulary)."""
    logits = a.logits.float()
    picked = logits.gather(-1, a.targets[:, None]).squeeze(-1)
    return picked - logits.logsumexp(-1)


def sequence_logprob(a: AnswerTokens) -> Tensor:
    """logπ(y|x) per row ``[B]``: the sum of its answer-token log-probs."""
    lp = token_logprobs(a)
    return lp.new_zeros(a.n_rows).index_add(0, a.rows, lp)


def answer_lengths(a: AnswerTokens) -> Tensor:
    """|y| per row ``[B]``: its number of answer tokens."""
    return torch.bincount(a.rows, minlength=a.n_rows).float()


def token_mean(values: Tensor) -> Tensor:
    """The mean of per-token ``values`` over the step's batch. Data parallel, each process
    holds a shard of the batch and the gradients are averaged over the W processes: the sum
    is divided by the tokens of all shards together (N summed over the processes, times W
    for the averaging), so the step's gradient is one process's on the whole batch whatever
    the shards' lengths. Every process must call it the same number of times per step."""
    world = processes()
    if world == 1:
        return values.mean()
    count = torch.tensor(float(values.numel()), device=values.device)
    torch.distributed.all_reduce(count)
    return values.sum() * world / count.clamp(min=1.0)


def processes() -> int:
    """Processes of the initialised process group (1 outside one)."""
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def mean_nll(a: AnswerTokens) -> Tensor:
    """ℓ(B) = −(1/N) Σ_t log p(y_t | ·) over the N answer tokens of the batch (of every
    data-parallel process's shard: :func:`token_mean`)."""
    return -token_mean(token_logprobs(a))


def kl_ref_theta(ref: AnswerTokens, cur: AnswerTokens) -> Tensor:
    """Token-level KL(p_ref ‖ p_θ) = (1/N) Σ_t Σ_v p_ref(v) (log p_ref(v) − log p_θ(v)),
    over the N answer tokens (:func:`token_mean`); both sides must come from the same
    sub-batch."""
    if ref.logits.shape != cur.logits.shape or not torch.equal(ref.targets, cur.targets):
        raise ModelError("KL between answer tokens of different batches")
    log_ref = ref.logits.float().log_softmax(-1)
    log_cur = cur.logits.float().log_softmax(-1)
    return token_mean(F.kl_div(log_cur, log_ref, log_target=True, reduction="none").sum(-1))


def npo_loss(logratio: Tensor, beta: float) -> Tensor:
    """NPO: −(2/β)·mean logσ(−β·r), r = logπ_θ(y|x) − logπ_ref(y|x) per sequence."""
    return -(2.0 / beta) * F.logsigmoid(-beta * logratio).mean()


def simnpo_loss(seq_logprob: Tensor, lengths: Tensor, beta: float, margin: float) -> Tensor:
    """SimNPO: −(2/β)·mean logσ(−(β/|y|)·logπ_θ(y|x) − γ_m)."""
    return -(2.0 / beta) * F.logsigmoid(-(beta / lengths) * seq_logprob - margin).mean()


def dpo_loss(chosen_ratio: Tensor, rejected_ratio: Tensor, beta: float) -> Tensor:
    """DPO: −mean logσ(β·(r_chosen − r_rejected)), r = logπ_θ − logπ_ref per sequence."""
    return -F.logsigmoid(beta * (chosen_ratio - rejected_ratio)).mean()


def masked_mse(hidden: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean over the masked positions of ‖h − target‖² / d (``F.mse_loss`` on those rows).
    ``hidden`` is ``[B, T, d]``, ``mask`` ``[B, T]``; ``target`` broadcasts to ``hidden``."""
    target = target.expand_as(hidden)
    return F.mse_loss(hidden[mask].float(), target[mask].float())


def dual_masked_kl(ref: AnswerTokens, cur: AnswerTokens, vocab: Tensor, keep: Tensor) -> Tensor:
    """SIU's Dual Masked KL: (1/Σ_t m_t) Σ_t m_t Σ_{v∉V_f} p̃_ref(v) (log p̃_ref(v) − log p_θ(v)).

    ``vocab`` ``[V]`` bool marks V_f (the vocabulary mask): p̃_ref is p_ref with those entries
    removed and renormalised, so the reference never pulls toward them. ``keep`` ``[N]`` bool is
    the token mask m_t: the positions kept (:func:`token_mean` over them; 0 when none is)."""
    if ref.logits.shape != cur.logits.shape or not torch.equal(ref.targets, cur.targets):
        raise ModelError("KL between answer tokens of different batches")
    log_ref = ref.logits.float().masked_fill(vocab, float("-inf")).log_softmax(-1)
    log_cur = cur.logits.float().log_softmax(-1)
    terms = torch.where(vocab, 0.0, log_ref.exp() * (log_ref - log_cur)).sum(-1)
    kept = terms[keep]
    if not kept.numel() and processes() == 1:
        return terms.sum() * 0.0  # nothing kept (the mean of nothing would be nan)
    return token_mean(kept)  # over the kept tokens of every data-parallel shard


def entropy_weighted_kl(log_target: Tensor, cur: AnswerTokens) -> tuple[Tensor, Tensor]:
    """ViKeR's regulariser: (1/N) Σ_t w_t · KL(q_t ‖ p_θ,t), w_t = H(q_t) / mean_s H(q_s).

    ``log_target`` ``[N, V]``: log q_t, the predicted post-unlearning distribution of each
    answer token (no gradient); H its entropy. Returns the term and the weights ``[N]``."""
    if log_target.shape != cur.logits.shape:
        raise ModelError("KL between answer tokens of different batches")
    target = log_target.exp()
    plogp = torch.special.xlogy(target, target).sum(-1)  # 0·log 0 = 0
    entropy = -plogp
    weights = entropy / global_mean(entropy).clamp(min=1e-8)
    kl = plogp - (target * cur.logits.float().log_softmax(-1)).sum(-1)
    return token_mean(weights * kl), weights


def global_mean(values: Tensor) -> Tensor:
    """The mean of ``values`` over every data-parallel process's shard, without gradient (a
    batch statistic, such as ViKeR's mean entropy; one process: ``values.mean()``)."""
    values = values.detach()
    if processes() == 1:
        return values.mean()
    total = torch.stack([values.sum(), torch.tensor(float(values.numel()), device=values.device)])
    torch.distributed.all_reduce(total)
    return total[0] / total[1].clamp(min=1.0)
