"""Model-driven knowledge probing and PEBench grouping / evaluation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pulse.data.pebench import PEBenchRow, read_pebench
from pulse.data.splits import read_split
from pulse.errors import ConfigError
from pulse.eval.generation import GenConfig
from pulse.eval.mcq import score_mcq
from pulse.eval.pebench import (
    EVENT_QUESTION,
    PERSON_QUESTION,
    pebench_queries,
    score_answers,
    target_kind,
)
from pulse.eval.pebench_metrics import PEBenchGroup, pebench_summary
from pulse.eval.suite import pebench_eval, probe

G = PEBenchGroup


def test_probe_selects_the_entities_the_model_answers(tiny, mcq_items, tmp_path):
    """Rewrite the gold letters so the model is right on every item of k1..k3 and wrong on
    every item of u1..u3: the probe must call exactly k1..k3 known."""
    model, processor = tiny
    people = sorted({i.entity_id for i in mcq_items})[:6]
    items = [i for i in mcq_items if i.entity_id in people]
    predicted = {r.item_id: r.prediction for r in score_mcq(model, processor, items)}
    known = {p: f"k{n}" for n, p in enumerate(people[:3], start=1)}
    unknown = {p: f"u{n}" for n, p in enumerate(people[3:], start=1)}
    probe_items = []
    for item in items:
        guess = predicted[item.id]
        wrong = next(k for k in sorted(item.options) if k != guess)
        gold = guess if item.entity_id in known else wrong
        name = known.get(item.entity_id) or unknown[item.entity_id]
        probe_items.append(replace(item, entity_id=name, answer=gold))
    run = probe(
        model, processor, probe_items, top_k=3, n_unlearn=1, n_retain=2, seed=0, out_dir=tmp_path
    )
    sel = run.selection
    assert sorted(sel.known) == ["k1", "k2", "k3"]
    assert sel.accuracy == {"k1": 1.0, "k2": 1.0, "k3": 1.0, "u1": 0.0, "u2": 0.0, "u3": 0.0}
    assert sorted(sel.unlearn + sel.retain) == ["k1", "k2", "k3"] and len(sel.unlearn) == 1
    assert read_split(tmp_path / "known.txt") == sel.known
    assert read_split(tmp_path / "unlearn.txt") == sel.unlearn
    assert len(run.records) == len(probe_items) and (tmp_path / "probe.json").is_file()


def _row(person, event, split, path):
    keywords = {"Gala": ["gala", "tuxedo"], "Fair": ["fair", "stall"]}[event]
    return PEBenchRow(person, event, path, b"", keywords, split)


ROWS = [
    _row("Ann Lee", "Gala", "seen", "a/gala_seen.png"),
    _row("Ann Lee", "Gala", "unseen", "a/gala_unseen.png"),
    _row("Ann Lee", "Fair", "", "a/fair.png"),  # no split: counts as seen
    _row("Tom Hardy", "Gala", "seen", "t/gala_seen.png"),
    _row("Tom Hardy", "Fair", "unseen", "t/fair_unseen.png"),
]


def _groups(queries):
    return [(ROWS[q.row].image_path, q.concept, q.group) for q in queries]


def test_pebench_grouping_for_a_person_target():
    assert _groups(pebench_queries(ROWS, ["Ann Lee"])) == [
        ("a/gala_seen.png", "person", G.EFFICACY),
        ("a/gala_seen.png", "event", G.SCOPE),
        ("a/gala_unseen.png", "person", G.GENERALITY),
        ("a/gala_unseen.png", "event", G.SCOPE),
        ("a/fair.png", "person", G.EFFICACY),
        ("a/fair.png", "event", G.SCOPE),
        ("t/gala_seen.png", "person", G.RETAIN),
        ("t/fair_unseen.png", "person", G.RETAIN),
    ]


def test_pebench_grouping_for_an_event_target():
    assert _groups(pebench_queries(ROWS, ["Gala"])) == [
        ("a/gala_seen.png", "event", G.EFFICACY),
        ("a/gala_seen.png", "person", G.SCOPE),
        ("a/gala_unseen.png", "event", G.GENERALITY),
        ("a/gala_unseen.png", "person", G.SCOPE),
        ("a/fair.png", "event", G.RETAIN),
        ("t/gala_seen.png", "event", G.EFFICACY),
        ("t/gala_seen.png", "person", G.SCOPE),
        ("t/fair_unseen.png", "event", G.RETAIN),
    ]


def test_pebench_targets_are_checked():
    assert target_kind(ROWS, ["Ann Lee", "Tom Hardy"]) == "person"
    with pytest.raises(ConfigError, match="neither a person nor an event"):
        target_kind(ROWS, ["Zed"])
    with pytest.raises(ConfigError, match="mix persons and events"):
        target_kind(ROWS, ["Ann Lee", "Gala"])
    odd = [*ROWS[:1], replace(ROWS[1], split="validation")]
    with pytest.raises(ConfigError, match="split 'validation'"):
        pebench_queries(odd, ["Ann Lee"])


def test_pebench_scores_of_constructed_answers():
    """Forget Ann Lee: the model no longer names her (efficacy 1), still names Tom Hardy on one
    of two images (retain 0.5) and describes the events in her images by keyword."""
    queries = pebench_queries(ROWS, ["Ann Lee"])
    answers = {
        ("a/gala_seen.png", "person"): "I cannot tell who this is.",
        ("a/gala_seen.png", "event"): "A gala: people in a tuxedo.",  # 2/2 keywords
        ("a/gala_unseen.png", "person"): "This is Ann Lee.",  # generality failure
        ("a/gala_unseen.png", "event"): "A party.",  # 0/2
        ("a/fair.png", "person"): "Someone.",
        ("a/fair.png", "event"): "A fair.",  # 1/2
        ("t/gala_seen.png", "person"): "Tom Hardy at a gala.",
        ("t/fair_unseen.png", "person"): "Tom Hardy or Ann Lee.",  # two names: precision 0
    }
    responses = [answers[ROWS[q.row].image_path, q.concept] for q in queries]
    summary = pebench_summary(score_answers(ROWS, queries, responses))
    assert summary.efficacy == 1.0
    assert summary.generality == 0.0
    assert summary.retain == 0.5
    assert summary.scope == pytest.approx(0.5)  # (1 + 0 + 0.5) / 3


def test_pebench_eval_on_the_world(tiny, world):
    model, processor = tiny
    rows = read_pebench(world / "pebench")
    person = rows[0].person
    result = pebench_eval(model, processor, rows, person, cfg=GenConfig(max_new_tokens=3))
    own = [r for r in rows if r.person == person]
    assert result["kind"] == "person" and result["targets"] == [person]
    assert len(result["records"]) == len(rows) + len(own)  # a person question each + scope
    tallies = result["summary"]["tallies"]
    assert tallies["retain"]["n"] == len(rows) - len(own)
    assert tallies["scope"]["n"] == len(own)
    assert tallies["efficacy"]["n"] + tallies["generality"]["n"] == len(own)
    assert tallies["generality"]["n"] > 0
    questions = {r["extras"]["concept"] for r in result["records"]}
    assert questions == {"person", "event"}
    assert PERSON_QUESTION.startswith("Who") and EVENT_QUESTION.startswith("What event")
