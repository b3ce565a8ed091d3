"""Distance to the oracle: a state's accuracy minus the oracle's on the same questions, with
the paired 95 % interval of the difference (a bootstrap over people, each with all of their
questions in both states; over training seeds too when there are several).

On the forget set an interval wholly below zero means *over-forgotten* (below what a model that
never learned these people answers), wholly above *not yet forgotten*; on the retain set the
oracle keeps exactly what it should, so a state below it lost knowledge it had to keep.
Measured on forget-type splits and the retain split, for each modality and pooled.
"""

from __future__ import annotations

from collections.abc import Sequence

from pulse.eval.intervals import Interval, paired_person_bootstrap_over_seeds
from pulse.eval.records import ItemRecord, tally
from pulse.protocol.metrics.accuracy import mcq_records
from pulse.protocol.metrics.base import (
    FORGET_SPLITS,
    Group,
    Metric,
    OraclePair,
    Splits,
    mean,
    modality_displays,
    split_groups,
)
from pulse.protocol.metrics.registry import register_metric

ORACLE_SPLITS = FORGET_SPLITS | {"retain"}


class OracleDistance(Metric):
    name = "oracle_distance"
    label = "Distance to the oracle"
    reads = "mcq"
    resamples = "people"
    versus_oracle = True
    ranked = False  # the ideal is zero, neither end
    legend = (
        "distance to the oracle: accuracy minus the oracle's on the same questions, with the "
        "paired interval over people"
    )
    columns = (
        *modality_displays("forget", "forget, "),
        *modality_displays("forgotten", "forgotten so far, "),
        *modality_displays("retain", "retain, "),
    )

    def groups(self, splits: Splits):
        return [g for g in split_groups(splits) if g.split in ORACLE_SPLITS]

    def select(self, measurement, group: Group) -> list[ItemRecord] | None:
        return mcq_records(measurement.mcq, group)

    def value(self, samples: Sequence[OraclePair]) -> float:
        return mean(tally(state).mean - tally(oracle).mean for state, oracle in samples)

    def count(self, samples: Sequence[OraclePair]) -> int:
        return len(samples[0][0])

    def interval(self, samples: Sequence[OraclePair]) -> Interval | None:
        # Every seed's state against the one oracle, question by question.
        return paired_person_bootstrap_over_seeds([s for s, _ in samples], [samples[0][1]])


ORACLE_DISTANCE = register_metric(OracleDistance())
