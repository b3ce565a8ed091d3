from fractions import Fraction

import pytest

from pulse.data.schema import ItemKind, Modality
from pulse.data.splits import read_split
from pulse.eval.probing import (
    entity_accuracy,
    probe_known_entities,
    rank_entities,
    select_known,
    split_selection,
    ties_at_cut,
)
from pulse.eval.records import ItemRecord

MM, TX = Modality.MULTIMODAL, Modality.TEXT


def make(entity, mm_right, mm_total, tx_right, tx_total):
    out = []
    for modality, right, total in ((MM, mm_right, mm_total), (TX, tx_right, tx_total)):
        for i in range(total):
            out.append(
                ItemRecord(
                    f"{entity}-{modality.value}-{i}",
                    entity,
                    ItemKind.MCQ,
                    modality,
                    "A",
                    "A",
                    correct=i < right,
                )
            )
    return out


# pooled / mean / min accuracy per entity:
#   p1: 4/5, 4/5       -> 0.8 / 0.8 / 0.8
#   p2: 5/5, 3/5       -> 0.8 / 0.8 / 0.6     (ties p1 on pooled and mean)
#   p3: 5/5, 5/5       -> 1.0
#   p4: 2/5, 5/5       -> 0.7 / 0.7 / 0.4
#   p0: 3/5, 5/5       -> 0.8 / 0.8 / 0.6     (ties p1 and p2; smallest id)
#   p5: 1/2, 9/10      -> 10/12 / 0.7 / 0.5  (unequal counts: pooled != mean)
RECORDS = [
    *make("p1", 4, 5, 4, 5),
    *make("p2", 5, 5, 3, 5),
    *make("p3", 5, 5, 5, 5),
    *make("p4", 2, 5, 5, 5),
    *make("p0", 3, 5, 5, 5),
    *make("p5", 1, 2, 9, 10),
]


def test_entity_accuracy_combinations():
    pooled = entity_accuracy(RECORDS, combine="pooled")
    mean = entity_accuracy(RECORDS, combine="mean")
    low = entity_accuracy(RECORDS, combine="min")
    assert list(pooled) == ["p0", "p1", "p2", "p3", "p4", "p5"]
    assert pooled["p5"] == Fraction(10, 12)
    assert mean["p5"] == Fraction(7, 10)
    assert low["p5"] == Fraction(1, 2)
    assert low["p2"] == Fraction(3, 5) and mean["p2"] == Fraction(4, 5)
    assert entity_accuracy(RECORDS, modalities=[TX])["p4"] == 1


def test_missing_modality_is_an_error_unless_not_required():
    records = [r for r in RECORDS if not (r.entity_id == "p4" and r.modality is TX)]
    with pytest.raises(ValueError, match="'p4' has no text items"):
        entity_accuracy(records)
    assert entity_accuracy(records, modalities=None, combine="min")["p4"] == Fraction(2, 5)


def test_ranking_breaks_ties_by_id():
    acc = entity_accuracy(RECORDS, combine="mean")
    assert rank_entities(acc) == ["p3", "p0", "p1", "p2", "p4", "p5"]
    assert select_known(acc, top_k=2) == ["p3", "p0"]
    assert ties_at_cut(acc, ["p3", "p0"]) == ["p1", "p2"]
    assert ties_at_cut(acc, ["p3", "p0", "p1", "p2"]) == []


def test_threshold_is_exact_and_combines_with_top_k():
    acc = entity_accuracy(RECORDS, combine="mean")
    # 0.8 as a float is a hair above 4/5; entities at exactly 80 % must still pass.
    assert select_known(acc, threshold=0.8) == ["p3", "p0", "p1", "p2"]
    assert select_known(acc, threshold=0.8, top_k=3) == ["p3", "p0", "p1"]
    with pytest.raises(ValueError, match="top 5"):
        select_known(acc, threshold=0.8, top_k=5)
    with pytest.raises(ValueError):
        select_known(acc)


def test_split_is_seeded_and_order_free():
    ids = [f"e{i:02d}" for i in range(45)]
    unlearn, retain = split_selection(ids, n_unlearn=20, n_retain=25, seed=3)
    assert len(unlearn) == 20 and len(retain) == 25
    assert sorted(unlearn + retain) == ids
    assert unlearn == sorted(unlearn)
    again = split_selection(list(reversed(ids)), n_unlearn=20, n_retain=25, seed=3)
    assert again == (unlearn, retain)
    other = split_selection(ids, n_unlearn=20, n_retain=25, seed=4)
    assert other != (unlearn, retain)
    small = split_selection(ids, n_unlearn=5, n_retain=5, seed=3)
    assert not set(small[0]) & set(small[1])
    with pytest.raises(ValueError):
        split_selection(ids, n_unlearn=30, n_retain=20, seed=3)


def test_probe_end_to_end_and_persist(tmp_path):
    sel = probe_known_entities(RECORDS, top_k=4, n_unlearn=2, n_retain=2, seed=0, combine="min")
    # min: p3 1.0, p1 0.8, then p0 / p2 at 0.6 (id order), p5 0.5, p4 0.4
    assert sel.known == ["p3", "p1", "p0", "p2"]
    assert sel.ties_at_cut == []
    assert sorted(sel.unlearn + sel.retain) == sorted(sel.known)
    assert sel.accuracy["p5"] == 0.5
    paths = sel.write(tmp_path)
    assert read_split(paths["unlearn"]) == sel.unlearn
    assert read_split(paths["retain"]) == sel.retain
    assert read_split(paths["known"]) == sel.known

    cut = probe_known_entities(RECORDS, top_k=3, n_unlearn=3, n_retain=0, seed=0, combine="min")
    assert cut.known == ["p3", "p1", "p0"] and cut.ties_at_cut == ["p2"]
    assert set(cut.write(tmp_path / "cut")) == {"known", "unlearn"}  # empty retain not written


def test_split_is_pinned():
    # Published splits must be reproducible across processes and Python releases.
    ids = [f"e{i}" for i in range(8)]
    assert split_selection(ids, n_unlearn=3, n_retain=4, seed=0) == (
        ["e1", "e4", "e5"],
        ["e0", "e2", "e3", "e7"],
    )
