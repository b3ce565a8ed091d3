"""Forget quality (TOFU, open-unlearning): the p-value of the two-sample Kolmogorov–Smirnov test
between the truth ratios (:mod:`.truth_ratio`) of a state and of the oracle on the same forget
questions. Near 1: the state's truth ratios are distributed like those of a model that never
learned the forget set; small: they are not (too much knowledge left, or too little).

Measured on every forget-type split (the forget set, and in the sequential scenario the subset
just unlearned and everything unlearned so far), for each modality and pooled; with several
training seeds the value is the mean of the seeds' p-values. A p-value has no interval. The
test reads log R (the same order, so the same p-value, and finite where R overflows).
"""

from __future__ import annotations

from collections.abc import Sequence

from scipy.stats import ks_2samp

from pulse.eval.records import ItemRecord
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
from pulse.protocol.metrics.truth_ratio import truth_ratio_records

# KS at this level: a p-value above it cannot tell the state from the oracle.
KS_LEVEL = 0.05


def forget_quality(state: Sequence[float], oracle: Sequence[float]) -> float:
    """The two-sample KS p-value between two sets of truth ratios."""
    return float(ks_2samp(list(state), list(oracle)).pvalue)


def _ratios(records: Sequence[ItemRecord]) -> list[float]:
    return [float(r.score) for r in records if r.score is not None]


class ForgetQuality(Metric):
    name = "forget_quality"
    label = "Forget quality"
    reads = "mcq"
    versus_oracle = True
    legend = (
        "forget quality: the KS p-value, in %, between the truth ratios of the state and of the "
        f"oracle on the forget questions (above {KS_LEVEL * 100:.0f}: indistinguishable from the "
        "oracle)"
    )
    columns = (
        *modality_displays("forget"),
        *modality_displays("forgotten", "forgotten so far, "),
    )

    def groups(self, splits: Splits):
        return [g for g in split_groups(splits) if g.split in FORGET_SPLITS]

    def select(self, measurement, group: Group) -> list[ItemRecord] | None:
        records = mcq_records(measurement.mcq, group)
        return truth_ratio_records(records, log=True) if records else None

    def value(self, samples: Sequence[OraclePair]) -> float:
        return mean(forget_quality(_ratios(state), _ratios(oracle)) for state, oracle in samples)

    def count(self, samples: Sequence[OraclePair]) -> int:
        return len(samples[0][0])


FORGET_QUALITY = register_metric(ForgetQuality())
