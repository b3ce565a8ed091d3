"""MCQ accuracy per split and modality: the share of a split's questions answered right.

Its interval resamples people, each drawn with all of their questions (a model tends to know a
person or not, so a person's questions are not independent); with several training seeds the
bootstrap draws seeds too. Changes and differences are paired person by person.
"""

from __future__ import annotations

from collections.abc import Sequence

from pulse.eval.intervals import (
    Interval,
    paired_person_bootstrap_over_seeds,
    person_bootstrap_over_seeds,
)
from pulse.eval.records import ItemRecord, tally
from pulse.protocol.metrics.base import Group, Metric, Splits, mean, split_groups
from pulse.protocol.metrics.registry import register_metric


def mcq_records(records: Sequence[ItemRecord], group: Group) -> list[ItemRecord]:
    """The records of the group's people in its modality (``all``: both)."""
    wanted = set(group.people)
    return [
        r
        for r in records
        if r.entity_id in wanted and (group.modality == "all" or r.modality.value == group.modality)
    ]


class Accuracy(Metric):
    name = "accuracy"
    label = "accuracy"
    reads = "mcq"
    resamples = "people"
    knowledge = True
    compared = True
    legend = "forget and retain: a bootstrap over people"

    def groups(self, splits: Splits):
        return split_groups(splits)

    def select(self, measurement, group: Group) -> list[ItemRecord]:
        return mcq_records(measurement.mcq, group)

    def value(self, samples: Sequence[list[ItemRecord]]) -> float:
        return mean(tally(s).mean for s in samples)

    def interval(self, samples) -> Interval | None:
        return person_bootstrap_over_seeds(samples)

    def paired(self, later, earlier) -> Interval | None:
        return paired_person_bootstrap_over_seeds(later, earlier)


ACCURACY = register_metric(Accuracy())
