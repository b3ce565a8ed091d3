"""Membership-inference scores of question / answer pairs, from one batched forward per pair.

A pair is encoded exactly as training encodes it (:class:`~pulse.models.chat.ChatCollator`:
the chat prompt, the image when the pair has one, the answer and EOS), and only the answer
tokens count. For answer tokens ``x_1..x_T`` with ``lp_t = log p(x_t | prompt, x_<t)``:

- **LOSS** (Yeom et al.): ``L = -(1/T) Σ_t lp_t``, the mean negative log-likelihood.
- **ZLib** (Carlini et al.): ``L / Z``, ``Z`` the length in bytes of the zlib-compressed answer
  text (UTF-8, level 9): the loss against how much information the text holds.
- **Min-K %** (Shi et al.): the mean of the ``m = max(1, floor(k·T))`` lowest ``lp_t``: a member's
  answer has few surprising tokens.
- **Min-K %++** (Zhang et al.): the same mean over the ``m`` lowest standardised log-probs
  ``z_t = (lp_t - μ_t) / σ_t``, where ``μ_t = Σ_v p_t(v) log p_t(v)`` and
  ``σ_t² = Σ_v p_t(v) (log p_t(v))² - μ_t²`` are the mean and variance of ``log p_t(v)`` under
  the model's own next-token distribution ``p_t`` at that position.
- **Reference** (loss ratio): ``L / L_ref``, ``L_ref`` the loss of a reference model on the
  same pair (the protocol's: the model before unlearning).

:data:`MEMBERSHIP` turns each into a *membership score*, higher meaning "more likely seen in
training" (the negated loss, ZLib and ratio; Min-K % and Min-K %++ as they are).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from pulse.eval.batching import chunks, eval_mode, model_device, progress
from pulse.methods.losses import answer_lengths, select_answers
from pulse.models.chat import ChatCollator

MIN_K = 0.4  # the share of lowest tokens Min-K % and Min-K %++ average (MUSE's default)
SCORES = ("loss", "zlib", "min_k", "min_k_pp", "reference")


@dataclass(frozen=True)
class PairScore:
    """One pair's scores in one model state. ``member``: whether the pair's person was
    trained on (the forget set) or not (the holdout); ``reference``: the reference model's
    loss on the same pair, when one was given."""

    entity_id: str
    pair: int  # the pair's place among its person's training pairs
    modality: str  # "multimodal" (with the image) or "text"
    member: bool
    tokens: int
    loss: float
    zlib: float
    min_k: float
    min_k_pp: float
    reference: float | None = None

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.entity_id, self.pair, self.modality)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairScore:
        return cls(**data)


def _negated_ratio(score: PairScore) -> float | None:
    if score.reference is None or score.reference <= 0:
        return None
    return -score.loss / score.reference


# Membership score of each kind: higher = more likely a member; None where it cannot be had.
MEMBERSHIP: dict[str, Callable[[PairScore], float | None]] = {
    "loss": lambda s: -s.loss,
    "zlib": lambda s: -s.zlib,
    "min_k": lambda s: s.min_k,
    "min_k_pp": lambda s: s.min_k_pp,
    "reference": _negated_ratio,
}


def zlib_length(text: str) -> int:
    """Bytes of the zlib-compressed UTF-8 text (level 9)."""
    return len(zlib.compress(text.encode("utf-8"), 9))


def lowest_mean(values: Sequence[float], k: float) -> float:
    """The mean of the ``max(1, floor(k·n))`` lowest of ``values``."""
    if not values:
        raise ValueError("no values")
    if not 0 < k <= 1:
        raise ValueError(f"k must be in (0, 1], got {k}")
    m = max(1, math.floor(k * len(values)))
    return sum(sorted(values)[:m]) / m


@dataclass(frozen=True)
class TokenStats:
    """Per answer token: its log-prob, and the mean and variance of the log-probs under the
    model's next-token distribution at its position."""

    logprob: list[float]
    mean: list[float]
    variance: list[float]


def token_stats(logits: torch.Tensor, targets: torch.Tensor) -> TokenStats:
    """``logits`` [n, vocab] at the positions that predict ``targets`` [n] (float32)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    probs = logp.exp()
    # 0 · log 0 is 0: a token of probability 0 adds nothing to the mean or the variance.
    weighted = torch.where(probs > 0, probs * logp, torch.zeros_like(logp))
    mean = weighted.sum(-1)
    second = torch.where(probs > 0, weighted * logp, torch.zeros_like(logp)).sum(-1)
    chosen = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return TokenStats(chosen.tolist(), mean.tolist(), (second - mean**2).clamp(min=0).tolist())


def pair_scores(stats: TokenStats, answer: str, k: float = MIN_K) -> dict[str, float]:
    """LOSS, ZLib, Min-K % and Min-K %++ of one pair from its answer tokens' statistics."""
    lp = stats.logprob
    loss = -sum(lp) / len(lp)
    z = [
        (x - mu) / math.sqrt(var) if var > 0 else 0.0
        for x, mu, var in zip(lp, stats.mean, stats.variance, strict=True)
    ]
    return {
        "loss": loss,
        "zlib": loss / zlib_length(answer),
        "min_k": lowest_mean(lp, k),
        "min_k_pp": lowest_mean(z, k),
    }


@dataclass(frozen=True)
class PairToScore:
    """A pair to score: who it is about, its place, whether a member, and what the model
    reads (``image`` None for a text-only pair)."""

    entity_id: str
    pair: int
    member: bool
    question: str
    answer: str
    image: bytes | None = None

    @property
    def modality(self) -> str:
        return "multimodal" if self.image is not None else "text"


# The pairs' batches (positions into the pairs) and each batch encoded as training encodes it.
EncodedPairs = tuple[list[list[int]], list[Any]]


def encode_pairs(processor: Any, pairs: Sequence[PairToScore], batch_size: int) -> EncodedPairs:
    """The pairs in batches, image rows apart from text rows (an image's tokens would pad
    every text row), then by length (little padding), each batch encoded with its labels."""
    collator = ChatCollator(processor)
    _, fulls, _ = collator.texts(pairs)
    lengths = [len(ids) for ids in collator.token_ids(fulls)]
    order = sorted(range(len(pairs)), key=lambda i: (pairs[i].image is not None, lengths[i], i))
    batches = chunks(order, batch_size)
    return batches, [collator([pairs[i] for i in batch]) for batch in batches]


def score_pairs(
    model: nn.Module,
    processor: Any,
    pairs: Sequence[PairToScore],
    *,
    k: float = MIN_K,
    batch_size: int = 64,
    show_progress: bool = False,
    encoded: EncodedPairs | None = None,
) -> list[PairScore]:
    """Every pair's scores (in input order), one forward per batch, no generation.

    ``encoded``: :func:`encode_pairs` of these very pairs, kept by the caller across model
    states (the protocol scores every state on the same pairs; tokenizer and image processor
    work is not the model's)."""
    if not pairs:
        return []
    batches, encoded_batches = encoded or encode_pairs(processor, pairs, batch_size)
    device = model_device(model)
    results: dict[int, PairScore] = {}
    with eval_mode(model), torch.inference_mode():
        steps = progress(
            zip(batches, encoded_batches, strict=True), show_progress, "membership", len(batches)
        )
        for batch, inputs in steps:
            labels = inputs["labels"]  # the encoded batch stays as it is (it may be reused)
            features = {key: value.to(device) for key, value in inputs.items() if key != "labels"}
            logits = model(**features).logits
            answers = select_answers(logits, labels.to(logits.device))
            stats = token_stats(answers.logits, answers.targets)
            counts = answer_lengths(answers).long().tolist()
            start = 0
            for row, index in enumerate(batch):
                end = start + counts[row]
                own = TokenStats(
                    stats.logprob[start:end], stats.mean[start:end], stats.variance[start:end]
                )
                start = end
                pair = pairs[index]
                scores = pair_scores(own, pair.answer, k)
                results[index] = PairScore(
                    pair.entity_id, pair.pair, pair.modality, pair.member, counts[row], **scores
                )
    return [results[i] for i in range(len(pairs))]
