"""The accuracy of guessing on the same items (1 / number of options, averaged): the floor a
forget accuracy can fall to. A model near it knew nothing to forget."""

from __future__ import annotations

from pulse.protocol.metrics.accuracy import mcq_records
from pulse.protocol.metrics.base import Group, Metric, Splits, split_groups
from pulse.protocol.metrics.registry import register_metric


class Chance(Metric):
    name = "chance"
    label = "chance"
    reads = "chance"
    knowledge = True

    def groups(self, splits: Splits):
        return split_groups(splits)

    def select(self, measurement, group: Group) -> list[float] | None:
        records = mcq_records(measurement.mcq, group)
        odds = [measurement.chance[r.item_id] for r in records if r.item_id in measurement.chance]
        # Every item needs its odds: a partial average would be a different floor.
        return odds if records and len(odds) == len(records) else None

    def value(self, samples) -> float:
        # Guessing is the same for every training seed: the first state's items say it.
        return sum(samples[0]) / len(samples[0])

    def seeds(self, samples) -> int:
        return 1

    def change(self, samples, before):
        return None


CHANCE = register_metric(Chance())
