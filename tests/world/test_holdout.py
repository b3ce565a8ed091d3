"""Holdout people: made like the others, never trained on, and the others unchanged by them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

from pulse.data.mllmu import profile_items, read_mllmu
from pulse.data.schema import ItemKind
from pulse.world.build import HOLDOUT_CELEBRITIES, HOLDOUT_FICTITIOUS, SIZES, _write_world
from pulse.world.people import FACE_FEATURES, MIN_FACE_DISTANCE


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_holdout_sizes_default_to_a_quarter_of_their_group():
    size = SIZES["small"]
    assert size.holdout_fictitious == max(4, size.fictitious // 4)
    assert size.holdout_celebrities == max(4, size.celebrities // 4)
    assert replace(size, holdout_fictitious=7).holdout_fictitious == 7


def test_holdout_people_are_never_trained_on(small_world):
    meta = json.loads((small_world / "world.json").read_text())
    holdout = {p["id"]: p for p in meta["people"] if p["group"].startswith("holdout_")}
    size = SIZES["small"]
    groups = [p["group"] for p in holdout.values()]
    assert groups.count("holdout_fictitious") == size.holdout_fictitious
    assert groups.count("holdout_celebrity") == size.holdout_celebrities
    # absent from every training config and from the corpus, by ID and by name
    for config in ("ft_Data", "Full_Set", "Retain_Set", "Test_Set"):
        assert not {p.id for p in read_mllmu(small_world / "mllmu", config)} & holdout.keys()
    corpus = (small_world / "corpus" / "pretrain.jsonl").read_text()
    for person in holdout.values():
        assert person["id"] not in corpus and person["name"].split()[1] not in corpus
    # the same kinds of questions and training pairs as Full_Set / Retain_Set
    for config, reference in (
        (HOLDOUT_FICTITIOUS, "Full_Set"),
        (HOLDOUT_CELEBRITIES, "Retain_Set"),
    ):
        rows = read_mllmu(small_world / "mllmu", config)
        other = read_mllmu(small_world / "mllmu", reference)[0]
        assert rows and {p.id for p in rows} <= holdout.keys()
        for row in rows:
            assert len(row.metadata) == len(other.metadata)
            mcq = [i for i in profile_items(row) if i.kind is ItemKind.MCQ]
            assert len(mcq) == len([i for i in profile_items(other) if i.kind is ItemKind.MCQ])
    # names and faces unique across everyone
    everyone = meta["people"]
    parts = [part for p in everyone for part in p["name"].split()]
    assert len(parts) == len(set(parts))
    for person in holdout.values():
        for other in everyone:
            if other["id"] != person["id"]:
                distance = sum(person["face"][k] != other["face"][k] for k in FACE_FEATURES)
                assert distance >= MIN_FACE_DISTANCE


def test_holdout_leaves_everyone_else_byte_for_byte(tmp_path):
    size = SIZES["small"]
    with_holdout, without = tmp_path / "with", tmp_path / "without"
    _write_world(with_holdout, 0, "small", size)
    _write_world(without, 0, "small", replace(size, holdout_fictitious=0, holdout_celebrities=0))
    kept, full = _files(without), _files(with_holdout)
    changed = [name for name, digest in kept.items() if full.get(name) != digest]
    assert changed == ["world.json"]  # it lists the holdout people too
    added = {name.split("/")[1] for name in full.keys() - kept.keys()}
    assert added == {"people", HOLDOUT_FICTITIOUS, HOLDOUT_CELEBRITIES}
    old = json.loads((without / "world.json").read_text())["people"]
    new = json.loads((with_holdout / "world.json").read_text())["people"]
    assert new[: len(old)] == old
