"""PrivLeak (MUSE): a state's membership-inference AUC against the oracle's on the same pairs,
``(AUC_state - AUC_oracle) / AUC_oracle`` (the tables show it in %). 0: the state leaks exactly
what a model that never saw the forget set leaks; positive: it still leaks membership;
negative: it is over-unlearned (its forget pairs look *less* seen than a never-trained model's).

One metric per score (``privleak_<score>``, as :mod:`.mia_auc`), with rows only where the
scenario has an oracle; its interval is a bootstrap over people with each draw applied to the
state and the oracle alike (paired). The oracle against itself is 0 with the interval [0, 0].
"""

from __future__ import annotations

from collections.abc import Sequence

from pulse.eval.membership import SCORES
from pulse.eval.mia import MembershipSample, auc, privleak, privleak_interval
from pulse.protocol.metrics.base import mean
from pulse.protocol.metrics.mia_auc import ScoreMetric
from pulse.protocol.metrics.registry import register_metric

Pair = tuple[MembershipSample, MembershipSample]


class PrivLeak(ScoreMetric):
    prefix, title = "privleak", "PrivLeak"
    versus_oracle = True
    explained = (
        "PrivLeak = (AUC - AUC of the oracle) / AUC of the oracle, in %: 0 is the oracle's "
        "level, positive still leaks, negative is over-unlearned (a paired bootstrap over "
        "people)"
    )

    def against(self, sample: MembershipSample, oracle: MembershipSample) -> Pair | None:
        # Relative to an oracle AUC of 0 PrivLeak has no value (MUSE's ratio is undefined).
        return (sample, oracle) if auc(oracle) > 0 else None

    def value(self, samples: Sequence[Pair]) -> float:
        return mean(privleak(auc(state), auc(oracle)) for state, oracle in samples)

    def count(self, samples: Sequence[Pair]) -> int:
        return len(samples[0][0].members) + len(samples[0][0].others)

    def interval(self, samples: Sequence[Pair]):
        return privleak_interval(samples)


PRIVLEAK = {score: register_metric(PrivLeak(score)) for score in SCORES}
