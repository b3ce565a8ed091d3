"""95 % intervals for the accuracies a run reports, so that a difference can be read against
the noise of the questions asked.

- **MCQ accuracy on a set of people**: a person's questions are not independent (the model
  either knows someone or not), so the interval resamples *people*, not questions: a
  percentile bootstrap over people, each drawn with all of their items, of the pooled
  accuracy Σ correct / Σ items. Seeded, so the same records give the same interval. A
  treating-items-as-independent interval would be too narrow by about √(items per person)
  when knowledge is all-or-nothing per person.
- **General capability** (one verdict per MMBench question): the Wilson score interval of a
  binomial proportion.
- **A change against before** (same questions, two model states): a *paired* bootstrap of the
  difference of the pooled accuracies, drawing people (or, for general capability, questions)
  with both of their verdicts. It is narrower than the two accuracies' intervals suggest: the
  same hard questions tend to be hard before and after.

Each is ``None`` where it cannot be estimated: no items, or fewer than two people (one
person's accuracy says nothing about how it would vary over people).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from pulse.eval.records import ItemRecord

LEVEL = 0.95
RESAMPLES = 2000
_Z = 1.959963984540054  # the standard normal's 97.5 % quantile


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def person_bootstrap(
    records: Iterable[ItemRecord], seed: int = 0, resamples: int = RESAMPLES
) -> Interval | None:
    """The 95 % percentile-bootstrap interval of the pooled accuracy of ``records``, drawing
    people (``entity_id``) with replacement, each with all of their items."""
    return _cluster_bootstrap(((r.entity_id, r.value) for r in records), seed, resamples)


def paired_person_bootstrap(
    after: Iterable[ItemRecord],
    before: Iterable[ItemRecord],
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> Interval | None:
    """The 95 % interval of accuracy(after) − accuracy(before) on the items both hold, drawing
    people with all of their items' verdict pairs (``None`` when the item sets differ)."""
    earlier = {r.item_id: r.value for r in before}
    later = list(after)
    if not later or {r.item_id for r in later} != set(earlier):
        return None
    pairs = ((r.entity_id, r.value - earlier[r.item_id]) for r in later)
    return _cluster_bootstrap(pairs, seed, resamples)


def paired_question_bootstrap(
    after: Mapping[str, float],
    before: Mapping[str, float],
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> Interval | None:
    """The same for verdicts keyed by question (general capability): each question its own
    unit, so this is a paired bootstrap of the difference of two proportions."""
    if not after or set(after) != set(before):
        return None
    pairs = ((q, float(after[q]) - float(before[q])) for q in after)
    return _cluster_bootstrap(pairs, seed, resamples)


def _cluster_bootstrap(
    values: Iterable[tuple[str, float]], seed: int, resamples: int
) -> Interval | None:
    """Percentile interval of Σ value / #values, resampling the clusters (first element)."""
    totals: dict[str, list[float]] = {}
    for cluster, value in values:
        entry = totals.setdefault(cluster, [0.0, 0.0])
        entry[0] += value
        entry[1] += 1
    if len(totals) < 2:
        return None
    # Sorted by cluster, so the interval does not depend on the order of the values.
    sums = np.array([totals[c][0] for c in sorted(totals)])
    counts = np.array([totals[c][1] for c in sorted(totals)])
    draws = np.random.default_rng(seed).integers(0, len(sums), size=(resamples, len(sums)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    tail = (1 - LEVEL) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(float(low), float(high))


def wilson(successes: float, n: int) -> Interval | None:
    """The 95 % Wilson score interval of ``successes`` out of ``n`` independent trials."""
    if n <= 0:
        return None
    p = successes / n
    z2 = _Z * _Z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    spread = _Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return Interval(max(0.0, centre - spread), min(1.0, centre + spread))
