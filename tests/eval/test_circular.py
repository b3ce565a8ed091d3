import json
import math

import pytest

from pulse.eval.circular import CircularRow, circular_eval


def rows():
    # q1: 4 rotations all right            -> 1 (vanilla right)
    # q2: rotation 0 right, rotation 2 wrong -> 0 (vanilla right)
    # q3: only rotation 0, wrong            -> 0 (vanilla wrong)
    # q4: rotation 0 missing, 1 and 3 right -> 1 (not in vanilla)
    # q5: 2 rotations right, no category    -> 1 overall only
    return [
        CircularRow(1, True, "ocr", "perception"),
        CircularRow(1_000_001, True, "ocr", "perception"),
        CircularRow(2_000_001, True, "ocr", "perception"),
        CircularRow(3_000_001, True, "ocr", "perception"),
        CircularRow(2, True, "ocr", "perception"),
        CircularRow(2_000_002, False, "ocr", "perception"),
        CircularRow(1_000_002, True, "ocr", "perception"),
        CircularRow(3, False, "logic", "reasoning"),
        CircularRow(1_000_004, True, "logic", "reasoning"),
        CircularRow(3_000_004, True, "logic", "reasoning"),
        CircularRow(5, True),
        CircularRow(1_000_005, True),
    ]


def test_circular_and_vanilla_accuracy():
    result = circular_eval(reversed(rows()))  # row order must not matter
    assert result.questions == {1: True, 2: False, 3: False, 4: True, 5: True}
    assert result.rotations == {1: 4, 2: 3, 3: 1, 4: 2, 5: 2}
    c = result.circular
    assert (c.overall.n, c.overall.total) == (5, 3.0)
    assert c.overall.mean == pytest.approx(0.6)
    assert {k: (t.n, t.total) for k, t in c.by_category.items()} == {
        "logic": (2, 1.0),
        "ocr": (2, 1.0),
    }
    assert {k: t.mean for k, t in c.by_l2_category.items()} == {"perception": 0.5, "reasoning": 0.5}
    v = result.vanilla
    assert (v.overall.n, v.overall.total) == (4, 3.0)  # q1, q2, q5 right; q3 wrong; q4 absent
    assert result.vanilla_questions == {1: True, 2: True, 3: False, 5: True}
    assert {k: (t.n, t.total) for k, t in v.by_category.items()} == {
        "logic": (1, 0.0),
        "ocr": (2, 2.0),
    }
    assert list(result.to_dict()["questions"]) == ["1", "2", "3", "4", "5"]
    json.dumps(result.to_dict())


def test_mapping_rows_with_tsv_spellings_and_nan():
    result = circular_eval(
        [
            {"index": 7, "correct": True, "category": "ocr", "L2-category": "perception"},
            {"index": 1_000_007, "correct": True, "category": "ocr", "l2-category": "perception"},
            {"index": 8, "correct": False, "category": math.nan, "l2_category": math.nan},
        ]
    )
    assert result.questions == {7: True, 8: False}
    assert list(result.circular.by_category) == ["ocr"]
    assert result.circular.by_l2_category["perception"].mean == 1.0


def test_duplicate_index_and_disagreeing_categories_are_errors():
    with pytest.raises(ValueError, match="twice"):
        circular_eval([CircularRow(1, True), CircularRow(1, False)])
    with pytest.raises(ValueError, match="disagree"):
        circular_eval([CircularRow(1, True, "ocr"), CircularRow(1_000_001, True, "logic")])


def test_empty_table():
    result = circular_eval([])
    assert result.circular.overall.n == 0 and result.circular.overall.mean is None
