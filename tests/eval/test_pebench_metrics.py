import json

import pytest

from pulse.data.schema import ItemKind, Modality
from pulse.eval.pebench_metrics import (
    keyword_matches,
    keyword_score,
    name_precision,
    pebench_summary,
)
from pulse.eval.records import ItemRecord, Tally

PEOPLE = ["Ann Lee", "Mary Ann Lee", "Tom Hardy", "Leeann Park"]


@pytest.mark.parametrize(
    ("response", "name", "expected"),
    [
        ("This is Ann Lee at a wedding.", "Ann Lee", 1.0),
        ("this is ANN  LEE.", "Ann Lee", 1.0),
        ("This is Ann.", "Ann Lee", 0.0),  # a first name is not the full name
        ("Ann Lee or Tom Hardy", "Ann Lee", 0.0),  # another known person named too
        ("This is Mary Ann Lee.", "Ann Lee", 0.0),  # the mention belongs to the longer name
        ("This is Mary Ann Lee.", "Mary Ann Lee", 1.0),  # "Ann Lee" inside it does not count
        ("Leeann Parks", "Leeann Park", 0.0),  # word boundaries
        ("Joanne Lee smiles", "Ann Lee", 0.0),
        ("I don't know who this is.", "Tom Hardy", 0.0),
        ("Tom Hardy, yes, Tom Hardy.", "Tom Hardy", 1.0),
        ("Ann Lee and Bob Smith", "Ann Lee", 1.0),  # unknown names are not counted
    ],
)
def test_name_precision(response, name, expected):
    assert name_precision(response, name, PEOPLE) == expected


KEYWORDS = [
    "wedding",
    "bride",
    "cake",
    "flower",
    "church",
    "dress",
    "party",
    "guest",
    "ring",
    "birthday cake",
]


def test_keyword_score_fraction_and_plurals():
    response = "Guests in a church; the bride cuts the cakes. Parties! Flowers everywhere."
    found = keyword_matches(response, KEYWORDS)
    assert {k for k, v in found.items() if v} == {
        "bride",
        "cake",
        "flower",
        "church",
        "party",
        "guest",
    }
    assert keyword_score(response, KEYWORDS) == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("response", "keyword", "hit"),
    [
        ("a Wedding", "wedding", True),
        ("weddings", "wedding", True),
        ("boxes", "box", True),
        ("the ladies", "lady", True),
        ("one lady", "ladies", True),
        ("two cakes", "cake", True),
        ("one cake", "cakes", True),
        ("pancake", "cake", False),  # word boundary
        ("caked mud", "cake", False),
        ("ringing bells", "ring", False),
        ("a birthday\n cake", "birthday cake", True),
        ("birthday cakes", "birthday cake", True),
        ("birthdays cake", "birthday cake", False),  # only the last word bends
        ("glass", "glass", True),
        ("glas", "glass", False),
    ],
)
def test_keyword_forms(response, keyword, hit):
    assert keyword_score(response, [keyword]) == (1.0 if hit else 0.0)


def test_duplicate_keywords_count_once_and_empty_is_an_error():
    assert keyword_score("cake", ["Cake", "cake", "bride"]) == 0.5
    with pytest.raises(ValueError):
        keyword_score("x", [])
    with pytest.raises(ValueError):
        keyword_score("x", ["  "])


def rec(item, group, score):
    return ItemRecord(
        item,
        "p1",
        ItemKind.GENERATION,
        Modality.MULTIMODAL,
        "resp",
        "gold",
        score=score,
        extras={"group": group},
    )


def test_summary_directions():
    records = [
        rec("a", "efficacy", 0.0),
        rec("b", "efficacy", 1.0),
        rec("c", "efficacy", 0.0),
        rec("d", "efficacy", 0.0),  # 1 of 4 still names the person -> efficacy 0.75
        rec("e", "generality", 0.5),
        rec("f", "retain", 1.0),
        rec("g", "retain", 0.0),
        rec("h", "scope", 0.8),
    ]
    s = pebench_summary(records)
    assert s.efficacy == pytest.approx(0.75)
    assert s.generality == pytest.approx(0.5)
    assert s.retain == pytest.approx(0.5)
    assert s.scope == pytest.approx(0.8)
    assert s.tallies["efficacy"] == Tally(4, 1.0)
    assert list(s.tallies) == ["efficacy", "generality", "retain", "scope"]
    json.dumps(s.to_dict())


def test_summary_missing_group_and_bad_tag():
    s = pebench_summary([rec("a", "retain", 1.0)])
    assert s.efficacy is None and s.retain == 1.0
    with pytest.raises(ValueError, match="expected one of"):
        pebench_summary([rec("a", "forget", 1.0)])
    with pytest.raises(ValueError, match="'group'"):
        pebench_summary([ItemRecord("z", "p", "mcq", "text", "A", "A", correct=True)])
