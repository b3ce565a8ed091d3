"""Verdicts and scores for free-text answers: cloze (fill the blank) and generation (ROUGE)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from rouge_score import rouge_scorer

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL")


def normalise_whitespace(text: str) -> str:
    """Collapse every run of whitespace to one space and strip the ends."""
    return " ".join(text.split())


def cloze_verdict(response: str, gold: str) -> bool:
    """MLLMU-Bench's cloze rule: the gold answer is a case-insensitive substring of the response,
    both whitespace-normalised. A plain substring, as published: gold ``"1990"`` is found in
    ``"19901"``."""
    needle = normalise_whitespace(gold).lower()
    if not needle:
        raise ValueError("cloze gold answer is empty: it would match every response")
    return needle in normalise_whitespace(response).lower()


@cache
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(list(ROUGE_KEYS), use_stemmer=True)


def rouge_f1(prediction: str, reference: str) -> dict[str, float]:
    """ROUGE-1 / ROUGE-2 / ROUGE-L F1 with the Porter stemmer (``rouge-score``).

    ``rouge-score`` lower-cases and keeps only ``[a-z0-9]`` tokens, so non-Latin text scores 0.
    """
    scores = _scorer().score(reference, prediction)  # the package takes (target, prediction)
    return {key: scores[key].fmeasure for key in ROUGE_KEYS}


@dataclass(frozen=True)
class RougeResult:
    per_item: list[dict[str, float]]
    mean: dict[str, float | None]  # None when there are no items


def rouge_batch(predictions: Sequence[str], references: Sequence[str]) -> RougeResult:
    """Per-item ROUGE F1 and their unweighted means: ``mean_k = (1/n) sum_i F1_k(i)``."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    per_item = [rouge_f1(p, r) for p, r in zip(predictions, references, strict=True)]
    n = len(per_item)
    mean = {k: (sum(s[k] for s in per_item) / n if n else None) for k in ROUGE_KEYS}
    return RougeResult(per_item, mean)
