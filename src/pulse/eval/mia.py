"""Membership-inference AUC and PrivLeak, with 95 % intervals that resample people.

- **AUC** of a membership score (:mod:`pulse.eval.membership`): scikit-learn's ROC AUC with
  members labelled 1 and non-members 0, i.e. the probability that a random member pair scores
  above a random non-member pair (ties count a half). 1: the attacker tells every member
  apart; 0.5: chance; below 0.5: members look *less* seen than data never trained on.
- **PrivLeak** (MUSE): ``(AUC_state - AUC_oracle) / AUC_oracle``, a fraction (the report shows
  it in %): 0 is ideal (the state leaks what a model that never saw the forget set leaks),
  positive means still leaking, negative means over-unlearned.

Intervals: a percentile bootstrap over *people*, members and non-members drawn separately
(each person with all of their pairs: a person's pairs are not independent). A draw gives every
pair the weight of its person's count, and the weighted AUC is computed for all draws at once
from one sort of the scores (:func:`weighted_aucs`; with unit weights it is sklearn's AUC, a
test checks it). PrivLeak's interval applies the same draw of people to the state and the
oracle (paired). With several training seeds the bootstrap draws seeds with replacement too and
averages over the drawn seeds (as :mod:`pulse.eval.intervals` does for accuracies).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from pulse.eval.intervals import LEVEL, RESAMPLES, Interval


@dataclass(frozen=True)
class MembershipSample:
    """Membership scores of member and non-member pairs, each with its person."""

    members: tuple[float, ...]
    member_people: tuple[str, ...]
    others: tuple[float, ...]
    other_people: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.members) and bool(self.others)


def auc(sample: MembershipSample) -> float:
    """scikit-learn's ROC AUC, members the positive class."""
    labels = [1] * len(sample.members) + [0] * len(sample.others)
    return float(roc_auc_score(labels, [*sample.members, *sample.others]))


def privleak(state: float, oracle: float) -> float:
    """(AUC_state - AUC_oracle) / AUC_oracle."""
    if oracle <= 0:
        raise ValueError("PrivLeak needs an oracle AUC above 0")
    return (state - oracle) / oracle


def weighted_aucs(
    members: np.ndarray, others: np.ndarray, member_w: np.ndarray, other_w: np.ndarray
) -> np.ndarray:
    """The AUC under each row of weights ([draws, n]): Σ_ij w_i w_j ([s_i > s_j] + ½[s_i = s_j])
    / (Σ_i w_i · Σ_j w_j), i over members, j over non-members. NaN where a side weighs 0."""
    values, index = np.unique(np.concatenate([members, others]), return_inverse=True)
    m_index, o_index = index[: len(members)], index[len(members) :]
    draws = member_w.shape[0]
    m_mass = np.zeros((draws, len(values)))
    o_mass = np.zeros((draws, len(values)))
    for mass, where, weights in ((m_mass, m_index, member_w), (o_mass, o_index, other_w)):
        np.add.at(mass.T, where, weights.T)  # each pair's weight onto its value's column
    below = np.cumsum(o_mass, axis=1) - o_mass  # non-member weight strictly below each value
    wins = (m_mass * (below + 0.5 * o_mass)).sum(axis=1)
    total = m_mass.sum(axis=1) * o_mass.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return wins / total


def _people_draw(
    people: Iterable[str], draws: int, rng: np.random.Generator
) -> tuple[dict[str, int], np.ndarray] | None:
    """Each person's count in every draw ([draws, people], people drawn with replacement), by
    name; None with fewer than two people: one person says nothing about other people."""
    names = sorted(set(people))
    if len(names) < 2:
        return None
    counts = rng.multinomial(len(names), [1 / len(names)] * len(names), size=draws)
    return {name: k for k, name in enumerate(names)}, counts.astype(float)


def _shared_draws(
    samples: Sequence[MembershipSample], resamples: int, rng: np.random.Generator
) -> Callable[[MembershipSample], tuple[np.ndarray, np.ndarray]] | None:
    """One draw of people for every sample (training seed), as pulse.eval.intervals draws
    them: a sample's pair weights are its people's counts in that draw. Independent draws per
    seed would average people's spread away and narrow the interval as seeds are added."""
    members = _people_draw((p for s in samples for p in s.member_people), resamples, rng)
    others = _people_draw((p for s in samples for p in s.other_people), resamples, rng)
    if members is None or others is None:
        return None

    (member_at, member_counts), (other_at, other_counts) = members, others

    def weights(sample: MembershipSample) -> tuple[np.ndarray, np.ndarray]:
        return (
            member_counts[:, [member_at[p] for p in sample.member_people]],
            other_counts[:, [other_at[p] for p in sample.other_people]],
        )

    return weights


def _aucs(sample: MembershipSample, weights: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return weighted_aucs(
        np.asarray(sample.members, float), np.asarray(sample.others, float), *weights
    )


def _percentile(values: np.ndarray) -> Interval | None:
    # Draws without a value (a side that weighs nothing, an oracle AUC of 0) are left out.
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high))


def _over_seeds(per_seed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[seeds, draws] -> [draws]: each draw the mean over seeds drawn with replacement (one seed:
    its own draws)."""
    seeds, draws = per_seed.shape
    if seeds == 1:
        return per_seed[0]
    picked = rng.integers(0, seeds, size=(draws, seeds))
    return per_seed[picked, np.arange(draws)[:, None]].mean(axis=1)


def auc_interval(
    samples: Sequence[MembershipSample], seed: int = 0, resamples: int = RESAMPLES
) -> Interval | None:
    """The 95 % interval of the mean AUC over ``samples`` (one per training seed: the same
    people, each seed's own pairs of them or the same): people (and seeds) drawn with
    replacement."""
    rng = np.random.default_rng(seed)
    weights = _shared_draws(samples, resamples, rng)
    if weights is None:
        return None
    rows = [_aucs(sample, weights(sample)) for sample in samples]
    return _percentile(_over_seeds(np.stack(rows), rng))


def privleak_interval(
    pairs: Sequence[tuple[MembershipSample, MembershipSample]],
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> Interval | None:
    """The 95 % interval of the mean PrivLeak over (state, oracle) samples (one per training
    seed, the oracle scored on that seed's pairs): each draw of people applied to the state and
    to the oracle alike. The two samples of a seed must hold the same people's pairs in the
    same order."""
    rng = np.random.default_rng(seed)
    if any(
        (state.member_people, state.other_people) != (oracle.member_people, oracle.other_people)
        for state, oracle in pairs
    ):
        return None
    weights = _shared_draws([state for state, _ in pairs], resamples, rng)
    if weights is None:
        return None
    rows = []
    for state, oracle in pairs:
        reference = _aucs(oracle, weights(state))
        with np.errstate(invalid="ignore", divide="ignore"):
            rows.append((_aucs(state, weights(state)) - reference) / reference)
    return _percentile(_over_seeds(np.stack(rows), rng))
