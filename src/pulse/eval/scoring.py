"""Multiple-choice verdicts from model scores, without generation.

Two scorers:

- **letter**: the next-token logits ``z`` at the answer position, read at the token of each valid
  option letter. ``log p(l) = z_l - logsumexp_{l' valid} z_{l'}`` (a softmax restricted to the
  item's own letters, so a 2-option item is not penalised for mass on "C").
- **option text**: the length-normalised log-likelihood of each option's text as the answer,
  ``s_o = (1/|o|) sum_t log p(o_t | prompt, o_<t)``; the prediction is the option with the
  highest ``s_o``, and ``log p(o) = s_o - logsumexp_{o'} s_{o'}`` (proportional to the geometric
  mean token probability).

Ties go to the first letter in alphabetical order, so a verdict never depends on the device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ChoiceScores:
    """Per item: the predicted letter, log-probs over its valid letters, and correctness
    (None when no gold letters were given)."""

    predicted: list[str]
    log_probs: list[dict[str, float]]
    correct: list[bool] | None


def score_letter_logits(
    logits: torch.Tensor,
    letter_token_ids: Sequence[Mapping[str, int]],
    gold: Sequence[str] | None = None,
) -> ChoiceScores:
    """Verdicts from next-token logits ``[n, vocab]`` at each item's answer position.

    ``letter_token_ids[i]`` maps each valid option letter of item ``i`` to its token id; items
    may have different numbers of options.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be [n, vocab], got shape {tuple(logits.shape)}")
    n, vocab = logits.shape
    if len(letter_token_ids) != n:
        raise ValueError(f"{n} rows of logits but {len(letter_token_ids)} items")
    letters = [sorted(ids) for ids in letter_token_ids]
    width = max((len(ls) for ls in letters), default=0)
    index = torch.zeros((n, width), dtype=torch.long)
    valid = torch.zeros((n, width), dtype=torch.bool)
    for i, (ids, ls) in enumerate(zip(letter_token_ids, letters, strict=True)):
        if not ls:
            raise ValueError(f"item {i}: no option letters")
        tokens = [ids[letter] for letter in ls]
        if len(set(tokens)) != len(tokens):
            raise ValueError(f"item {i}: two option letters share a token id: {dict(ids)}")
        if not all(0 <= t < vocab for t in tokens):
            raise ValueError(f"item {i}: a letter token id is outside the vocabulary ({vocab})")
        index[i, : len(ls)] = torch.tensor(tokens)
        valid[i, : len(ls)] = True
    # Gather first, then move the small [n, width] table to the CPU in float32: the same
    # arithmetic and the same first-maximum tie-break on every device and dtype.
    picked = logits.gather(1, index.to(logits.device)).float().cpu()
    picked = picked.masked_fill(~valid, -math.inf)
    return _verdicts(picked, letters, gold)


def score_option_texts(
    mean_logprobs: Sequence[Mapping[str, float]], gold: Sequence[str] | None = None
) -> ChoiceScores:
    """Verdicts from each option's length-normalised log-likelihood (see
    :func:`answer_logprob`), one mapping letter -> score per item."""
    letters = [sorted(scores) for scores in mean_logprobs]
    width = max((len(ls) for ls in letters), default=0)
    table = torch.full((len(letters), width), -math.inf, dtype=torch.float64)
    for i, (scores, ls) in enumerate(zip(mean_logprobs, letters, strict=True)):
        if not ls:
            raise ValueError(f"item {i}: no option scores")
        table[i, : len(ls)] = torch.tensor([float(scores[letter]) for letter in ls])
    return _verdicts(table, letters, gold)


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Per-token log-probs aligned with ``input_ids``, in float32.

    ``out[:, t] = log p(input_ids[:, t] | input_ids[:, :t])``, read from ``logits[:, t - 1]``
    (a causal LM's logits at position t predict token t + 1); ``out[:, 0] = 0`` (nothing
    predicts the first token).
    """
    if logits.dim() != 3 or logits.shape[:2] != input_ids.shape:
        raise ValueError(
            f"logits [n, T, vocab] and input_ids [n, T] disagree: "
            f"{tuple(logits.shape)} vs {tuple(input_ids.shape)}"
        )
    shifted = logits[:, :-1].float()
    targets = input_ids[:, 1:].unsqueeze(-1)
    lp = shifted.gather(-1, targets).squeeze(-1) - torch.logsumexp(shifted, dim=-1)
    return torch.nn.functional.pad(lp, (1, 0), value=0.0)


def answer_logprob(
    token_lp: torch.Tensor, answer_mask: torch.Tensor, *, normalise: bool = True
) -> torch.Tensor:
    """``sum_t m_t lp_t``, divided by ``sum_t m_t`` when ``normalise``; one value per row.

    ``answer_mask`` marks answer tokens only (never prompt, image or padding positions). A row
    without answer tokens, or one marking position 0 (which nothing predicts), is an error.
    """
    if token_lp.shape != answer_mask.shape:
        raise ValueError(f"shapes differ: {tuple(token_lp.shape)} vs {tuple(answer_mask.shape)}")
    mask = answer_mask.bool()
    if bool(mask[:, 0].any()):
        raise ValueError("answer_mask marks position 0, which no logit predicts")
    counts = mask.sum(dim=1)
    if bool((counts == 0).any()):
        raise ValueError("a row has no answer tokens")
    total = (token_lp.float() * mask).sum(dim=1)
    return total / counts if normalise else total


def _verdicts(
    table: torch.Tensor, letters: list[list[str]], gold: Sequence[str] | None
) -> ChoiceScores:
    """``table[i, j]`` scores ``letters[i][j]`` (-inf pads); argmax keeps the first maximum."""
    log_probs = torch.log_softmax(table, dim=1) if table.numel() else table
    best = table.argmax(dim=1).tolist() if table.numel() else []
    predicted = [ls[j] for ls, j in zip(letters, best, strict=True)]
    probs = [
        {letter: float(log_probs[i, j]) for j, letter in enumerate(ls)}
        for i, ls in enumerate(letters)
    ]
    correct = None
    if gold is not None:
        if len(gold) != len(letters):
            raise ValueError(f"{len(letters)} items but {len(gold)} gold letters")
        for i, (g, ls) in enumerate(zip(gold, letters, strict=True)):
            if g not in ls:
                raise ValueError(f"item {i}: gold letter {g!r} is not one of {ls}")
        correct = [p == g for p, g in zip(predicted, gold, strict=True)]
    return ChoiceScores(predicted, probs, correct)
