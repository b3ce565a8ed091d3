"""95 % intervals: a bootstrap over people for MCQ accuracy, Wilson for general capability."""

from __future__ import annotations

import random

import pytest

from pulse.data.schema import ItemKind, Modality
from pulse.eval.intervals import (
    Interval,
    paired_person_bootstrap,
    paired_person_bootstrap_over_seeds,
    paired_question_bootstrap,
    paired_question_bootstrap_over_seeds,
    person_bootstrap,
    person_bootstrap_over_seeds,
    question_bootstrap_over_seeds,
    wilson,
)
from pulse.eval.records import ItemRecord, tally


def records(per_person: list[list[bool]]) -> list[ItemRecord]:
    return [
        ItemRecord(f"p{p}-q{q}", f"p{p}", ItemKind.MCQ, Modality.TEXT, "a", "a", correct=ok)
        for p, answers in enumerate(per_person)
        for q, ok in enumerate(answers)
    ]


def test_bootstrap_holds_the_pooled_accuracy_and_ignores_record_order():
    rng = random.Random(3)
    data = records([[rng.random() < 0.6 for _ in range(8)] for _ in range(30)])
    interval = person_bootstrap(data)
    assert interval.low < tally(data).mean < interval.high
    shuffled = data[:]
    rng.shuffle(shuffled)
    assert person_bootstrap(shuffled) == interval  # seeded, and people sorted first
    assert person_bootstrap(data, seed=1) != interval


def test_bootstrap_resamples_people_not_questions():
    # All-or-nothing knowledge per person: 10 people x 10 questions, half known. Treating the
    # 100 answers as independent would give about ±10 points; over 10 people it is about ±30.
    data = records([[p % 2 == 0] * 10 for p in range(10)])
    interval = person_bootstrap(data)
    independent = wilson(50, 100)
    assert interval.half_width > 2.5 * independent.half_width
    assert 0.25 < interval.half_width < 0.35
    # More people with the same pattern narrow it.
    wide = person_bootstrap(records([[p % 2 == 0] * 10 for p in range(40)]))
    assert wide.half_width < interval.half_width / 1.6


def test_bootstrap_edges():
    assert person_bootstrap(records([[True, False, True]])) is None  # one person: no spread
    assert person_bootstrap([]) is None
    everything = person_bootstrap(records([[True] * 4] * 5))
    assert (everything.low, everything.high) == (1.0, 1.0)


def test_wilson_matches_known_values():
    half = wilson(5, 10)
    assert half.low == pytest.approx(0.2366, abs=1e-4)
    assert half.high == pytest.approx(0.7634, abs=1e-4)
    none_right = wilson(0, 10)
    assert none_right.low == 0.0 and none_right.high == pytest.approx(0.2775, abs=1e-4)
    assert wilson(0, 0) is None


def test_paired_change_is_narrower_than_the_two_accuracies_suggest():
    # 30 people x 6 questions; after unlearning each person loses exactly their first two
    # questions: the change is -1/3 for everyone, so its paired interval is that point, while
    # the two accuracies' own intervals are wide (people differ in how much they knew).
    rng = random.Random(5)
    known = [[rng.random() < 0.5 + 0.4 * (p % 2) for _ in range(6)] for p in range(30)]
    before = records([[True, True, *row[2:]] for row in known])
    after = records([[False, False, *row[2:]] for row in known])
    change = paired_person_bootstrap(after, before)
    assert change.low == pytest.approx(-1 / 3) and change.high == pytest.approx(-1 / 3)
    assert person_bootstrap(after).half_width > 0.05
    assert paired_person_bootstrap(before, before) == Interval(0.0, 0.0)
    # Different questions on the two sides: no pairing.
    assert paired_person_bootstrap(after[1:], before) is None


def test_paired_question_change():
    before = {str(q): q % 2 == 0 for q in range(40)}
    after = {q: ok and int(q) % 4 != 0 for q, ok in before.items()}  # loses 10 of 20
    change = paired_question_bootstrap(after, before)
    assert change.low < -0.25 + 1e-9 < change.high < 0
    assert paired_question_bootstrap({"1": True}, {"2": True}) is None


def test_seeds_that_agree_give_the_one_seed_interval():
    rng = random.Random(5)
    data = records([[rng.random() < 0.5 for _ in range(6)] for _ in range(12)])
    assert person_bootstrap_over_seeds([data, data, data]) == person_bootstrap(data)


def test_seeds_that_disagree_widen_the_interval_to_their_spread():
    # Two seeds, one knowing everyone and one no one: the mean over a draw of two seeds is
    # 0, 0.5 or 1 (probabilities 1/4, 1/2, 1/4), so the 95 % interval is [0, 1], while each
    # seed alone has no spread at all over people.
    everyone, no_one = records([[True] * 3] * 6), records([[False] * 3] * 6)
    assert person_bootstrap(everyone) == Interval(1.0, 1.0)
    assert person_bootstrap_over_seeds([everyone, no_one]) == Interval(0.0, 1.0)


def test_paired_over_seeds_pairs_each_seed_or_broadcasts_one_before():
    rng = random.Random(8)
    before = records([[rng.random() < 0.9 for _ in range(5)] for _ in range(10)])
    after = [records([[rng.random() < p for _ in range(5)] for _ in range(10)]) for p in (0.2, 0.3)]
    broadcast = paired_person_bootstrap_over_seeds(after, [before])
    assert broadcast == paired_person_bootstrap_over_seeds(after, [before, before])
    change = sum(tally(a).mean for a in after) / 2 - tally(before).mean
    assert broadcast.low < change < broadcast.high < 0
    # Other items in one seed, or a before list of the wrong length: no interval.
    assert paired_person_bootstrap_over_seeds(after, [before[:-1]]) is None
    assert paired_person_bootstrap_over_seeds(after, [before] * 3) is None
    assert person_bootstrap_over_seeds([after[0], after[1][:-1]]) is None


def test_question_verdicts_over_seeds():
    one = {f"q{i}": float(i % 2) for i in range(20)}
    other = {f"q{i}": 1.0 for i in range(20)}
    pooled = question_bootstrap_over_seeds([one, other])
    assert pooled.low < 0.75 < pooled.high
    assert question_bootstrap_over_seeds([one, {}]) is None
    change = paired_question_bootstrap_over_seeds([other, other], [one])
    assert change == paired_question_bootstrap(other, one)
