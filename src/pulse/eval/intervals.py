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

- **Several training seeds** (a run's ``repeats``: the same request trained under seeds
  s, s+1, ...): the value is the mean over seeds of each seed's accuracy, and the interval a
  *hierarchical* bootstrap that draws seeds and, within the draw, people (or questions) with
  replacement: it covers how the result varies with the training run as well as with the
  questions asked. With one seed it is exactly the bootstrap above.

Each is ``None`` where it cannot be estimated: no items, or fewer than two people (one
person's accuracy says nothing about how it would vary over people).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
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
    return person_bootstrap_over_seeds([list(records)], seed, resamples)


def person_bootstrap_over_seeds(
    runs: Sequence[Sequence[ItemRecord]], seed: int = 0, resamples: int = RESAMPLES
) -> Interval | None:
    """The interval of the mean over ``runs`` (one record list per training seed, on the same
    items) of their pooled accuracies: seeds and people drawn with replacement."""
    return _cluster_bootstrap(
        [[(r.entity_id, r.value) for r in run] for run in runs], seed, resamples
    )


def paired_person_bootstrap(
    after: Iterable[ItemRecord],
    before: Iterable[ItemRecord],
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> Interval | None:
    """The 95 % interval of accuracy(after) − accuracy(before) on the items both hold, drawing
    people with all of their items' verdict pairs (``None`` when the item sets differ)."""
    return paired_person_bootstrap_over_seeds([list(after)], [list(before)], seed, resamples)


def paired_person_bootstrap_over_seeds(
    after: Sequence[Sequence[ItemRecord]],
    before: Sequence[Sequence[ItemRecord]],
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> Interval | None:
    """The same over training seeds: ``after[i]`` is paired with ``before[i]`` (the same seed's
    other state), or with ``before[0]`` for every ``i`` when ``before`` is one state (the model
    before any request, which no seed changes)."""

    def verdicts(run: Sequence[ItemRecord]) -> dict[str, tuple[str, float]]:
        return {r.item_id: (r.entity_id, r.value) for r in run}

    return _paired(
        [verdicts(run) for run in after], [verdicts(run) for run in before], seed, resamples
    )


def paired_question_bootstrap(
    after: Mapping[str, float],
    before: Mapping[str, float],
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> Interval | None:
    """The same for verdicts keyed by question (general capability): each question its own
    unit, so this is a paired bootstrap of the difference of two proportions."""
    return paired_question_bootstrap_over_seeds([after], [before], seed, resamples)


def paired_question_bootstrap_over_seeds(
    after: Sequence[Mapping[str, float]],
    before: Sequence[Mapping[str, float]],
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> Interval | None:
    """Per-question verdicts over training seeds, paired as in
    :func:`paired_person_bootstrap_over_seeds`."""

    def verdicts(run: Mapping[str, float]) -> dict[str, tuple[str, float]]:
        return {q: (q, float(v)) for q, v in run.items()}

    return _paired(
        [verdicts(run) for run in after], [verdicts(run) for run in before], seed, resamples
    )


def question_bootstrap_over_seeds(
    runs: Sequence[Mapping[str, float]], seed: int = 0, resamples: int = RESAMPLES
) -> Interval | None:
    """The interval of the mean over seeds of a proportion of per-question verdicts (one
    seed's proportion takes the Wilson interval instead)."""
    if any(not run for run in runs):
        return None
    return _cluster_bootstrap(
        [[(q, float(v)) for q, v in run.items()] for run in runs], seed, resamples
    )


def _paired(
    after: Sequence[Mapping[str, tuple[str, float]]],
    before: Sequence[Mapping[str, tuple[str, float]]],
    seed: int,
    resamples: int,
) -> Interval | None:
    """The bootstrap of the differences item by item (each item: its cluster and verdict),
    ``after[i]`` against ``before[i]`` or, with one ``before``, against that one; ``None``
    when the runs do not hold the same items."""
    if not after or len(before) not in (1, len(after)):
        return None
    befores = list(before) * len(after) if len(before) == 1 else before
    runs = []
    for later, earlier in zip(after, befores, strict=True):
        if not later or set(later) != set(earlier):
            return None
        runs.append(
            [(cluster, value - earlier[item][1]) for item, (cluster, value) in later.items()]
        )
    return _cluster_bootstrap(runs, seed, resamples)


def _cluster_bootstrap(
    runs: Sequence[Sequence[tuple[str, float]]], seed: int, resamples: int
) -> Interval | None:
    """Percentile interval of the mean over runs of each run's Σ value / #values, resampling
    the clusters (first element) and, with several runs, the runs. Every run must hold the
    same clusters with the same number of values (the same questions, other verdicts)."""
    tallies = [_tally(run) for run in runs]
    if not tallies:
        return None
    # Sorted by cluster, so the interval does not depend on the order of the values.
    clusters = sorted(tallies[0])
    if len(clusters) < 2:
        return None
    counts = np.array([tallies[0][c][1] for c in clusters])
    if any(sorted(t) != clusters or [t[c][1] for c in clusters] != list(counts) for t in tallies):
        return None
    sums = np.array([[t[c][0] for c in clusters] for t in tallies])  # [runs, clusters]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(clusters), size=(resamples, len(clusters)))
    per_run = sums[:, draws].sum(axis=2) / counts[draws].sum(axis=1)  # [runs, resamples]
    if len(runs) == 1:
        means = per_run[0]
    else:
        # Drawn after the clusters: one run's interval is the same as without this step.
        picks = rng.integers(0, len(runs), size=(resamples, len(runs)))
        means = per_run[picks, np.arange(resamples)[:, None]].mean(axis=1)
    tail = (1 - LEVEL) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(float(low), float(high))


def _tally(values: Iterable[tuple[str, float]]) -> dict[str, list[float]]:
    totals: dict[str, list[float]] = {}
    for cluster, value in values:
        entry = totals.setdefault(cluster, [0.0, 0.0])
        entry[0] += value
        entry[1] += 1
    return totals


def wilson(successes: float, n: int) -> Interval | None:
    """The 95 % Wilson score interval of ``successes`` out of ``n`` independent trials."""
    if n <= 0:
        return None
    p = successes / n
    z2 = _Z * _Z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    spread = _Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return Interval(max(0.0, centre - spread), min(1.0, centre + spread))
