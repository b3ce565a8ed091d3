"""PEBench scores of a person or event target: efficacy (seen images of the target) and
generality (its unseen images), 1 minus the mean matching score, so higher is better
forgetting; retain (other targets) and scope (the other concept in the target's images), the
mean score.

The bootstrap draws the concept a record is about (a person or an event: its images are not
independent) when a group holds two or more of them, else the images themselves (one forgotten
target's own images). Efficacy and generality, 1 minus a mean, turn their bounds around.
"""

from __future__ import annotations

from dataclasses import replace

from pulse.eval.intervals import (
    Interval,
    paired_person_bootstrap_over_seeds,
    person_bootstrap_over_seeds,
)
from pulse.eval.pebench_metrics import FORGET_GROUPS
from pulse.eval.records import ItemRecord, tally
from pulse.protocol.metrics.base import Group, Metric, Splits, mean
from pulse.protocol.metrics.registry import register_metric

PEBENCH_GROUPS = ("efficacy", "generality", "retain", "scope")


def units(records: list[ItemRecord]) -> list[ItemRecord]:
    """Records keyed by the unit a bootstrap draws (see the module docstring)."""
    if len({r.entity_id for r in records}) >= 2:
        return records
    return [replace(r, entity_id=r.item_id) for r in records]


def _turned(interval: Interval | None, offset: float) -> Interval | None:
    """The interval of ``offset - x`` from that of x (1 - x for a score, -x for a change)."""
    return None if interval is None else Interval(offset - interval.high, offset - interval.low)


class PEBenchScore(Metric):
    name = "score"
    label = "PEBench score"
    reads = "pebench"
    resamples = "people or events (a lone target: its images)"
    legend = "PEBench scores: over people or events"

    def groups(self, splits: Splits):
        return [Group(group, "multimodal") for group in PEBENCH_GROUPS]

    def select(self, measurement, group: Group) -> list[ItemRecord]:
        return units([r for r in measurement.pebench if r.extras.get("group") == group.split])

    def value(self, samples) -> float:
        return mean(self._score(s, tally(s).mean) for s in samples)

    def _score(self, sample: list[ItemRecord], value: float) -> float:
        return 1.0 - value if self._forget_side(sample) else value

    @staticmethod
    def _forget_side(sample: list[ItemRecord]) -> bool:
        return str(sample[0].extras.get("group")) in FORGET_GROUPS

    def interval(self, samples) -> Interval | None:
        interval = person_bootstrap_over_seeds(samples)
        return _turned(interval, 1.0) if self._forget_side(samples[0]) else interval

    def paired(self, later, earlier) -> Interval | None:
        interval = paired_person_bootstrap_over_seeds(later, earlier)
        return _turned(interval, 0.0) if self._forget_side(later[0]) else interval


SCORE = register_metric(PEBenchScore())
