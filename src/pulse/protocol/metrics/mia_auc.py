"""Membership-inference AUC: how well an attacker holding one membership score tells the forget
set's training pairs (members: trained on, then unlearned) from the holdout people's pairs
(non-members: never trained on), per modality (:mod:`pulse.protocol.privacy` says which pairs).

One metric per score of :mod:`pulse.eval.membership` (``mia_auc_loss``, ``mia_auc_zlib``,
``mia_auc_min_k``, ``mia_auc_min_k_pp``, ``mia_auc_reference``): scikit-learn's ROC AUC, members
the positive class (1: every member told apart; 0.5: chance; below 0.5: the forget pairs look
less seen than pairs never trained on). Its interval is a bootstrap over people, members and
non-members drawn apart (:mod:`pulse.eval.mia`). The reference score needs the model before
unlearning: the before row has none. The ideal is no end but the oracle's level (PrivLeak,
:mod:`.privleak`), so no value is marked best.
"""

from __future__ import annotations

from collections.abc import Sequence

from pulse.eval.membership import MEMBERSHIP, SCORES
from pulse.eval.mia import MembershipSample, auc, auc_interval
from pulse.protocol.metrics.base import Group, Metric, Splits, mean, split_groups
from pulse.protocol.metrics.registry import register_metric

SCORE_LABELS = {
    "loss": "LOSS",
    "zlib": "ZLib",
    "min_k": "Min-K %",
    "min_k_pp": "Min-K %++",
    "reference": "reference",
}


def membership_sample(measurement, group: Group, score: str) -> MembershipSample | None:
    """The group's member pairs (its people's) and every non-member pair, in the group's
    modality, as membership scores (in a fixed order); None where a score is missing."""
    pairs = sorted(measurement.pairs or [], key=lambda p: (p.member, p.key))
    people = set(group.people)
    wanted = [
        p
        for p in pairs
        if (group.modality == "all" or p.modality == group.modality)
        and (not p.member or p.entity_id in people)
    ]
    scores = [MEMBERSHIP[score](p) for p in wanted]
    if any(s is None for s in scores):
        return None
    members = [(s, p.entity_id) for s, p in zip(scores, wanted, strict=True) if p.member]
    others = [(s, p.entity_id) for s, p in zip(scores, wanted, strict=True) if not p.member]
    if not members or not others:
        return None
    return MembershipSample(
        tuple(s for s, _ in members),
        tuple(e for _, e in members),
        tuple(s for s, _ in others),
        tuple(e for _, e in others),
    )


# The splits whose people were trained on and unlearned: the members, each measured against
# every holdout pair (the sequential scenario's subset just unlearned and all so far too).
PRIVACY_SPLITS = ("forget", "current", "forgotten")


def privacy_groups(splits: Splits) -> list[Group]:
    return [g for g in split_groups(splits) if g.split in PRIVACY_SPLITS]


class ScoreMetric(Metric):
    """A metric of one membership score on the privacy splits' pairs: the name, label and
    which pairs it reads; a subclass says what it computes from them."""

    reads = "pairs"
    resamples = "people"
    ranked = False  # the ideal is the oracle's level, neither end
    prefix = ""  # the metric's name is ``<prefix>_<score>``
    title = ""  # its label is ``<title>, <score's label>``
    explained = ""  # the legend, written once (with the first score)

    def __init__(self, score: str) -> None:
        self.score = score
        self.name = f"{self.prefix}_{score}"
        self.label = f"{self.title}, {SCORE_LABELS[score]}"
        self.legend = self.explained if score == SCORES[0] else ""

    def groups(self, splits: Splits):
        return privacy_groups(splits)

    def select(self, measurement, group: Group) -> MembershipSample | None:
        return membership_sample(measurement, group, self.score)


class MembershipAUC(ScoreMetric):
    prefix, title = "mia_auc", "MIA AUC"
    explained = (
        "MIA AUC: forget pairs (members) against holdout pairs (non-members), 50 = chance, "
        "a bootstrap over people"
    )

    def value(self, samples: Sequence[MembershipSample]) -> float:
        return mean(auc(s) for s in samples)

    def count(self, samples: Sequence[MembershipSample]) -> int:
        return len(samples[0].members) + len(samples[0].others)

    def interval(self, samples):
        return auc_interval(samples)

    def change(self, samples, before):
        return None


MIA_AUC = {score: register_metric(MembershipAUC(score)) for score in SCORES}
