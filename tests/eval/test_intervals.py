"""95 % intervals: a bootstrap over people for MCQ accuracy, Wilson for general capability."""

from __future__ import annotations

import random

import pytest

from pulse.data.schema import ItemKind, Modality
from pulse.eval.intervals import person_bootstrap, wilson
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
