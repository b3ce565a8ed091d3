"""General capability on an MMBench-format dev set: ``circular`` (CircularEval: a question
counts only if every rotation is answered right) and ``vanilla`` (each row on its own).

One verdict per question: a single state takes the Wilson interval; several training seeds a
bootstrap over seeds and questions. The circular change against before, and its differences,
are paired question by question. Evaluations of earlier versions that kept no per-question
verdicts give no interval where one would need them.
"""

from __future__ import annotations

from collections.abc import Sequence

from pulse.eval.intervals import (
    Interval,
    paired_question_bootstrap_over_seeds,
    question_bootstrap_over_seeds,
    wilson,
)
from pulse.eval.mmbench import GeneralResult, Verdicts
from pulse.eval.records import Tally
from pulse.protocol.metrics.base import Group, Metric, Splits, mean
from pulse.protocol.metrics.registry import register_metric

GENERAL_SPLIT = "general"


def _verdicts(generals: Sequence[GeneralResult], key: str) -> list[Verdicts] | None:
    verdicts = [getattr(g, key) for g in generals]
    return None if any(not v for v in verdicts) else verdicts


class GeneralCapability(Metric):
    reads = "general"
    resamples = "questions"
    verdicts_key: str  # where the evaluation keeps this metric's per-question verdicts

    def groups(self, splits: Splits):
        return [Group(GENERAL_SPLIT, "all")]

    def select(self, measurement, group: Group) -> GeneralResult | None:
        return measurement.general

    def tally(self, sample: GeneralResult) -> Tally:
        return getattr(sample, self.name)

    def value(self, samples) -> float:
        return mean(self.tally(s).mean for s in samples)

    def count(self, samples) -> int:
        return self.tally(samples[0]).n

    def interval(self, samples) -> Interval | None:
        if len(samples) == 1:
            tally = self.tally(samples[0])
            return wilson(tally.total, tally.n)
        verdicts = _verdicts(samples, self.verdicts_key)
        return question_bootstrap_over_seeds(verdicts) if verdicts else None


class Circular(GeneralCapability):
    name = "circular"
    label = "circular"
    verdicts_key = "questions"
    compared = True
    legend = "general capability: over questions"

    def paired(self, later, earlier) -> Interval | None:
        after, before = _verdicts(later, "questions"), _verdicts(earlier, "questions")
        if after is None or before is None:
            return None
        return paired_question_bootstrap_over_seeds(after, before)


class Vanilla(GeneralCapability):
    name = "vanilla"
    label = "vanilla"
    verdicts_key = "vanilla_questions"

    def change(self, samples, before) -> Interval | None:
        return None  # the report's change intervals are CircularEval's


CIRCULAR = register_metric(Circular())
VANILLA = register_metric(Vanilla())
