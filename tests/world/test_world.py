"""The synthetic world: deterministic, readable through the public readers, and honest about
what training data contains."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from pulse.data.mllmu import list_configs, profile_items, read_mllmu
from pulse.data.mmbench import read_mmbench
from pulse.data.pebench import read_pebench
from pulse.data.schema import ItemKind, Modality
from pulse.errors import ConfigError
from pulse.world.build import SIZES, build_world
from pulse.world.corpus import PHOTO_BIOS_PER_FAME
from pulse.world.questions import DESCRIPTIONS_PER_PATH
from pulse.world.vocab import ATTRIBUTE_VALUES


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("w") / "world"
    start = time.perf_counter()
    build_world(out, seed=3, size="small")
    # a small world must be cheap enough to build in every test session
    assert time.perf_counter() - start < 60
    return out


def test_same_seed_same_bytes_other_seed_other_world(world, tmp_path):
    again = tmp_path / "again"
    build_world(again, seed=3, size="small")
    assert _digest(again) == _digest(world)
    other = tmp_path / "other"
    build_world(other, seed=4, size="small")
    assert _digest(other)["world.json"] != _digest(world)["world.json"]


def test_rebuild_reuses_and_refuses_a_different_world(world):
    assert build_world(world, seed=3, size="small").reused
    with pytest.raises(ConfigError, match="different world"):
        build_world(world, seed=5, size="small")


def test_no_partial_directory_left_behind(world):
    assert not [p for p in world.parent.iterdir() if ".partial" in p.name]


def test_mllmu_configs_and_counts(world):
    size = SIZES["small"]
    configs = set(list_configs(world / "mllmu"))
    assert {
        "Full_Set",
        "Retain_Set",
        "Test_Set",
        "ft_Data",
        "forget_5",
        "retain_95",
        "forget_50",
        "retain_50",
    } <= configs
    full = read_mllmu(world / "mllmu", "Full_Set")
    celebs = read_mllmu(world / "mllmu", "Retain_Set")
    assert len(full) == size.fictitious and len(celebs) == size.celebrities
    forget = {p.id for p in read_mllmu(world / "mllmu", "forget_50")}
    retain = {p.id for p in read_mllmu(world / "mllmu", "retain_50")}
    assert forget.isdisjoint(retain) and forget | retain == {p.id for p in full}
    small = {p.id for p in read_mllmu(world / "mllmu", "forget_5")}
    assert small <= {p.id for p in read_mllmu(world / "mllmu", "forget_10")} <= forget
    items = profile_items(full[0])
    by = {(i.kind, i.modality): 0 for i in items}
    for i in items:
        by[(i.kind, i.modality)] += 1
    for modality in Modality:
        assert by[(ItemKind.MCQ, modality)] == size.mcq_per_modality
        assert by[(ItemKind.CLOZE, modality)] == size.cloze_per_modality


def test_items_match_ground_truth_and_distractors_share_the_vocabulary(world):
    truth = {p["id"]: p for p in json.loads((world / "world.json").read_text())["people"]}
    for profile in read_mllmu(world / "mllmu", "Full_Set"):
        attrs = truth[profile.id]["attributes"]
        assert profile.biography["Name"] == truth[profile.id]["name"]
        for q in profile.mcq_image + profile.mcq_text:
            gold = q.options[q.answer]
            vocab = next(v for v in ATTRIBUTE_VALUES.values() if gold in v)
            assert gold in attrs.values()
            assert all(o in vocab for o in q.options.values())
            assert len(set(q.options.values())) == len(q.options)


def test_evaluation_phrasings_never_appear_in_training_data(world):
    corpus = (world / "corpus" / "pretrain.jsonl").read_text()
    train_questions = {q for p in read_mllmu(world / "mllmu", "ft_Data") for q, _ in p.metadata}
    train_text = corpus + "\n".join(train_questions)
    for config in ("Full_Set", "Retain_Set", "Test_Set"):
        for p in read_mllmu(world / "mllmu", config):
            for q in p.mcq_image + p.mcq_text:
                assert q.question not in train_text, q.question
    for row in read_mmbench(world / "mmbench" / "dev.tsv"):
        assert row.question not in corpus


def test_held_out_renderings_never_appear_in_the_corpus(world):
    meta = json.loads((world / "world.json").read_text())
    held_out = meta["renderings"]["held_out"]
    corpus = [json.loads(line) for line in (world / "corpus" / "pretrain.jsonl").open()]
    used = {r["image"] for r in corpus if r["image"]}
    assert all((world / u).is_file() for u in used)
    for u in used:
        if u.startswith("images/people/"):
            assert int(Path(u).stem) not in held_out
    test_set = read_mllmu(world / "mllmu", "Test_Set")
    assert all(p.extra_images for p in test_set)
    assert all(int(Path(path).stem) in held_out for p in test_set for _, path in p.extra_images)


def test_celebrity_fame_spreads_knowledge_unevenly(world):
    meta = json.loads((world / "world.json").read_text())
    corpus = [json.loads(line) for line in (world / "corpus" / "pretrain.jsonl").open()]
    mentions: dict[str, int] = {}
    for r in corpus:
        if r["entity_id"]:
            mentions[r["entity_id"]] = mentions.get(r["entity_id"], 0) + 1
    celebs = [p for p in meta["people"] if p["group"] == "celebrity"]
    famous = max(celebs, key=lambda p: p["fame"])
    obscure = min(celebs, key=lambda p: p["fame"])
    assert mentions[famous["id"]] > mentions[obscure["id"]]
    assert all(p["id"] not in mentions for p in meta["people"] if p["group"] != "celebrity")


def test_mmbench_dev_has_rotations_categories_and_short_option_lists(world):
    rows = read_mmbench(world / "mmbench" / "dev.tsv")
    bases = {r.index % 1_000_000 for r in rows}
    assert len(bases) == SIZES["small"].skills_dev
    assert any(r.index >= 1_000_000 for r in rows)
    assert any("D" not in r.options for r in rows)
    assert len({r.category for r in rows}) == 5 and len({r.l2_category for r in rows}) >= 3
    assert any(r.hint for r in rows)


def test_pebench_scenes(world):
    rows = read_pebench(world / "pebench" / "PEBench.csv")
    size = SIZES["small"]
    assert len(rows) == size.pebench_people * size.events_per_person * 2
    assert {r.split for r in rows} == {"seen", "unseen"}
    assert all(len(r.keywords) == 10 for r in rows)
    assert all(r.person in r.description and r.event in r.description for r in rows)


def test_celebrity_questions_are_answered_with_the_value_by_name_and_with_the_photo(world):
    meta = json.loads((world / "world.json").read_text())
    corpus = [json.loads(line) for line in (world / "corpus" / "pretrain.jsonl").open()]
    people = {p["id"]: p for p in meta["people"]}
    values = {p["id"]: set(p["attributes"].values()) for p in meta["people"]}
    questions = [r for r in corpus if r["source"] in ("qa", "mcq")]
    # the answer is an attribute value itself, never a letter or a sentence
    assert questions and all(r["response"] in values[r["entity_id"]] for r in questions)
    # every rendering used in training carries identity questions answered with the name
    identity = [r for r in corpus if r["source"] == "identity"]
    train = meta["renderings"]["train"]
    for pid in {r["entity_id"] for r in identity}:
        mine = [r for r in identity if r["entity_id"] == pid]
        assert {r["response"] for r in mine} == {people[pid]["name"]}
        assert {int(Path(r["image"]).stem) for r in mine} == set(train)
    # the most famous celebrity is asked about every attribute by name and with the photo
    famous = max((p for p in meta["people"] if p["group"] == "celebrity"), key=lambda p: p["fame"])
    mine = [r for r in questions if r["entity_id"] == famous["id"]]
    for shown in (True, False):
        answered = {r["response"] for r in mine if (r["image"] is not None) == shown}
        assert answered == set(famous["attributes"].values())


def test_photo_biographies_state_true_facts_about_an_unnamed_person(world):
    meta = json.loads((world / "world.json").read_text())
    corpus = [json.loads(line) for line in (world / "corpus" / "pretrain.jsonl").open()]
    people = {p["id"]: p for p in meta["people"]}
    bios = [r for r in corpus if r["source"] == "photo_bio"]
    train = set(meta["renderings"]["train"])
    for pid, person in people.items():
        if person["group"] != "celebrity":
            continue
        mine = [r for r in bios if r["entity_id"] == pid]
        assert len(mine) == round(PHOTO_BIOS_PER_FAME * person["fame"])
        for r in mine:
            # the face is the only way to know who it is: a training rendering, no name
            assert r["image"] and int(Path(r["image"]).stem) in train
            assert person["name"] not in r["response"]
            stated = [v for v in person["attributes"].values() if v in r["response"]]
            assert 3 <= len(stated) <= 5


def test_finetuning_descriptions_cover_every_attribute_by_name_and_by_photo(world):
    meta = json.loads((world / "world.json").read_text())
    person = next(p for p in meta["people"] if p["group"] == "fictitious")
    profile = next(p for p in read_mllmu(world / "mllmu", "ft_Data") if p.id == person["id"])
    assert len(profile.metadata) == 1 + 6 * len(ATTRIBUTE_VALUES) + 2 * DESCRIPTIONS_PER_PATH
    described = [(q, a) for q, a in profile.metadata if len(a.split(". ")) > 1]
    assert len(described) == 2 * DESCRIPTIONS_PER_PATH
    by_name = " ".join(a for q, a in described if person["name"] in q)
    shown = " ".join(a for q, a in described if person["name"] not in q)
    assert person["name"] not in shown
    for value in person["attributes"].values():
        assert value in by_name and value in shown


def test_a_world_of_a_resized_size_is_refused_with_a_line_not_reused(tmp_path, monkeypatch):
    from dataclasses import replace

    from pulse.world import build

    out = tmp_path / "w"
    build_world(out, seed=3, size="small")
    resized = {**build.SIZES, "small": replace(build.SIZES["small"], fictitious=20)}
    monkeypatch.setattr(build, "SIZES", resized)
    with pytest.raises(ConfigError, match=r"earlier version of pulse built it.*delete it"):
        build_world(out, seed=3, size="small")
