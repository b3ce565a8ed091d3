import json

import pytest

from pulse.data.schema import ItemKind, Modality
from pulse.eval.records import (
    ItemRecord,
    Summary,
    Tally,
    records_from_dicts,
    records_to_dicts,
    summarise,
    tally_by,
)

MM, TX = Modality.MULTIMODAL, Modality.TEXT


def mcq(item, entity, modality, correct):
    return ItemRecord(item, entity, ItemKind.MCQ, modality, "A", "B", correct=correct)


RECORDS = [
    mcq("e2-m1", "e2", MM, True),
    mcq("e1-m1", "e1", MM, True),
    mcq("e1-m2", "e1", MM, False),
    mcq("e1-t1", "e1", TX, True),
    mcq("e2-t1", "e2", TX, False),
    mcq("e2-t2", "e2", TX, False),
]


def test_summary_counts_and_means():
    s = summarise(RECORDS)
    assert s.overall == Tally(6, 3.0)
    assert s.overall.mean == 0.5
    assert s.by_modality == {"multimodal": Tally(3, 2.0), "text": Tally(3, 1.0)}
    assert s.by_entity == {"e1": Tally(3, 2.0), "e2": Tally(3, 1.0)}
    assert s.by_entity_modality["e2"] == {"multimodal": Tally(1, 1.0), "text": Tally(2, 0.0)}
    assert list(s.by_entity) == ["e1", "e2"]  # sorted whatever the input order


def test_summary_json_round_trip_is_deterministic():
    s = summarise(RECORDS)
    text = json.dumps(s.to_dict())
    assert Summary.from_dict(json.loads(text)) == s
    assert json.dumps(summarise(list(reversed(RECORDS))).to_dict()) == text


def test_records_round_trip_sorted_by_item_id():
    rec = ItemRecord(
        "g1",
        "e1",
        ItemKind.GENERATION,
        TX,
        "he was a cook",
        "he was a chef",
        score=0.75,
        extras={"zeta": 1, "alpha": [1, 2]},
    )
    rows = records_to_dicts([*RECORDS, rec])
    assert [r["item_id"] for r in rows] == sorted(r.item_id for r in [*RECORDS, rec])
    assert list(rows[-1]["extras"]) == ["alpha", "zeta"]
    back = records_from_dicts(json.loads(json.dumps(rows)))
    assert back == sorted([*RECORDS, rec], key=lambda r: r.item_id)
    assert back[-1].kind is ItemKind.GENERATION and back[-1].value == 0.75


def test_value_prefers_the_verdict():
    rec = ItemRecord("x", "e", "mcq", "text", "A", "A", correct=True, score=-0.3)
    assert rec.value == 1.0
    assert rec.modality is TX  # strings are coerced to the enums


def test_record_needs_a_verdict_or_score():
    with pytest.raises(ValueError, match="verdict"):
        ItemRecord("x", "e", ItemKind.MCQ, TX, None, "A")
    with pytest.raises(ValueError):
        ItemRecord("x", "e", "essay", TX, None, "A", correct=False)


def test_duplicates_and_mixed_kinds_are_errors():
    with pytest.raises(ValueError, match="two records"):
        summarise([RECORDS[0], RECORDS[0]])
    gen = ItemRecord("g", "e1", ItemKind.GENERATION, TX, "x", "y", score=0.5)
    with pytest.raises(ValueError, match="different kinds"):
        summarise([RECORDS[0], gen])


def test_tally_by_custom_key_and_empty():
    by = tally_by(RECORDS, lambda r: r.item_id[-2])
    assert by == {"m": Tally(3, 2.0), "t": Tally(3, 1.0)}
    assert summarise([]).overall.mean is None
