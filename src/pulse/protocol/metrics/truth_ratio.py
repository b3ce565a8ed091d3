"""Truth ratio per question (TOFU's, with length-normalised probabilities): the geometric mean
probability of the wrong options over the correct option's,

    R = (prod_{o wrong} P(o))^(1/#wrong) / P(correct),   P(o) = exp(s_o),

where ``s_o`` is the option-text scorer's mean log-probability per token of option ``o``
(kept per record in ``extras["mean_logprobs"]``). A model that knows the answer has R well
below 1; one that never learned it, about 1. The row's value is the mean over the group's
questions, its interval a bootstrap over people. Evaluations by other scorers keep no
per-option log-probs: no rows.

R is computed from its logarithm, ``mean_{o wrong} s_o - s_correct``: a gap beyond what a float
holds (about 709 nats) makes R infinite instead of raising; forget quality reads the logarithm
itself (its KS test depends only on the order of the values, which the logarithm keeps).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from pulse.eval.intervals import Interval, person_bootstrap_over_seeds
from pulse.eval.records import ItemRecord, tally
from pulse.protocol.metrics.accuracy import mcq_records
from pulse.protocol.metrics.base import Group, Metric, Splits, mean, split_groups
from pulse.protocol.metrics.registry import register_metric

OPTION_LOGPROBS = "mean_logprobs"  # the option-text scorer's per-option scores in ``extras``


def log_truth_ratio(option_logprobs: Mapping[str, float], gold: str) -> float:
    """log R of one question from each option's length-normalised log-probability."""
    wrong = [value for letter, value in option_logprobs.items() if letter != gold]
    if gold not in option_logprobs or not wrong:
        raise ValueError(f"truth ratio needs the correct option {gold!r} and a wrong one")
    return sum(wrong) / len(wrong) - option_logprobs[gold]


def truth_ratio(option_logprobs: Mapping[str, float], gold: str) -> float:
    """R of one question; ``inf`` where it is beyond a float (log R above about 709)."""
    try:
        return math.exp(log_truth_ratio(option_logprobs, gold))
    except OverflowError:
        return math.inf


def truth_ratio_records(
    records: Sequence[ItemRecord], *, log: bool = False
) -> list[ItemRecord] | None:
    """The records with their truth ratio (its logarithm with ``log``) as ``score`` (and no
    verdict, so a tally averages it); None unless every record kept its per-option log-probs."""
    ratio = log_truth_ratio if log else truth_ratio
    out = []
    for record in records:
        scores = record.extras.get(OPTION_LOGPROBS)
        if not scores or len(scores) < 2:
            return None
        out.append(replace(record, correct=None, score=ratio(scores, record.gold)))
    return out


class TruthRatio(Metric):
    name = "truth_ratio"
    label = "truth ratio"
    reads = "mcq"
    resamples = "people"
    # Lower where the model knows the answer: better lower on retain, higher on forget.
    higher_is_better = False
    knowledge = True
    legend = "truth ratio: mean over questions, a bootstrap over people"

    def groups(self, splits: Splits):
        return split_groups(splits)

    def select(self, measurement, group: Group) -> list[ItemRecord] | None:
        records = mcq_records(measurement.mcq, group)
        return truth_ratio_records(records) if records else None

    def value(self, samples: Sequence[list[ItemRecord]]) -> float:
        return mean(tally(s).mean for s in samples)

    def interval(self, samples) -> Interval | None:
        return person_bootstrap_over_seeds(samples)


TRUTH_RATIO = register_metric(TruthRatio())
