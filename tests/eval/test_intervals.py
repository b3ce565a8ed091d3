"""95 % intervals: a bootstrap over people for MCQ accuracy, Wilson for general capability."""

from __future__ import annotations

import random

import pytest

from pulse.data.schema import ItemKind, Modality
from pulse.eval.intervals import (
    Interval,
    paired_person_bootstrap,
    paired_question_bootstrap,
    person_bootstrap,
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
