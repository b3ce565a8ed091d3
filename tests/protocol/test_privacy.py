"""Membership inference in a miniature run: a model trained on the forget people leaks their
membership against the holdout people, a model trained without them (the oracle) does not, and
the rows, the privacy table, its figure and its reading follow."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest
from tests.fixtures.tiny import TAUGHT

from pulse.data.mllmu import read_mllmu
from pulse.methods.request import sample_per_entity, train_pairs
from pulse.methods.supervised import TrainConfig, train_supervised
from pulse.models.tiny import build_tiny_lmm
from pulse.protocol.config import parse_config
from pulse.protocol.results import RESULTS_FILE, read_results
from pulse.protocol.runner import run_protocol
from pulse.report import write_report
from pulse.world.train import finetune_examples

PAIRS = 8  # pairs per person, trained and scored alike


def _train(mllmu, people, texts, out):
    """A tiny LLaVA trained from scratch on ``people``'s pairs until it knows them by heart."""
    model, processor = build_tiny_lmm(texts * 3, TAUGHT, seed=0)
    pairs = sample_per_entity(train_pairs(mllmu, people), PAIRS, 0)
    cfg = TrainConfig(max_steps=120, batch_size=16, learning_rate=5e-3, progress=False)
    train_supervised(model, processor, finetune_examples(pairs), cfg)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def privacy_setup(small_world, tmp_path_factory):
    """The world's MLLMU-Bench folder, the forget people and a run's config (without a
    holdout) on a model trained on the forget and retain people and its oracle."""
    mllmu = small_world / "mllmu"
    people = sorted(p.id for p in read_mllmu(mllmu, "Full_Set"))
    forget, retain = people[:4], people[4:8]
    holdout = sorted(p.id for p in read_mllmu(mllmu, "Holdout_Set"))
    # The tokenizer knows every name (the holdout's too): members differ by training alone.
    every = sample_per_entity(train_pairs(mllmu, forget + retain + holdout), PAIRS, 0)
    texts = [f"USER: {p.question} ASSISTANT: {p.answer}" for p in every]
    models = tmp_path_factory.mktemp("privacy-models")
    finetuned = _train(mllmu, forget + retain, texts, models / "finetuned")
    oracle = _train(mllmu, retain, texts, models / "oracle")
    base = {
        "models": {"finetuned": str(finetuned), "oracle": str(oracle)},
        "data": {"mllmu": str(mllmu)},
        "train": {"max_steps": 2, "batch_size": 4, "pairs_per_id": PAIRS},
        "eval": {"general": False},
        "methods": [{"method": "ga"}],
        "scenarios": {
            "finetuned": {"forget": ",".join(forget), "retain": ",".join(retain)},
            "pretrained": {"enabled": False},
            "sequential": {"enabled": False},
            "scope": {"enabled": False},
            "pebench": {"enabled": False},
        },
    }
    return mllmu, forget, base


@pytest.fixture(scope="module")
def privacy_run(privacy_setup, tmp_path_factory):
    _, _, base = privacy_setup
    runs = tmp_path_factory.mktemp("privacy-runs")
    with_holdout = parse_config({**base, "privacy": {"holdout": "Holdout_Set"}})
    without = parse_config(base)
    measured = run_protocol(with_holdout, runs / "holdout", progress=False).root
    unmeasured = run_protocol(without, runs / "none", progress=False).root
    return measured, unmeasured


def _rows(root, method):
    return {
        (r.split, r.modality, r.metric): r
        for r in read_results(root / RESULTS_FILE)
        if r.scenario == "finetuned" and r.method == method
    }


def test_the_trained_model_leaks_and_the_oracle_does_not(privacy_run):
    root, _ = privacy_run
    before, oracle = _rows(root, "before"), _rows(root, "oracle")
    for modality in ("multimodal", "text", "all"):
        leak = before["forget", modality, "mia_auc_min_k_pp"]
        assert leak.value > 0.85 and leak.low > 0.6 and leak.n > 0
        assert before["forget", modality, "mia_auc_loss"].value > 0.85
        assert abs(oracle["forget", modality, "mia_auc_min_k_pp"].value - 0.5) < 0.2
        privleak = before["forget", modality, "privleak_min_k_pp"]
        assert privleak.value > 0.3 and privleak.low > 0  # still leaking, and measured so
        itself = oracle["forget", modality, "privleak_loss"]
        assert itself.value == 0 and (itself.low, itself.high) == (0, 0)
    # the reference score needs the model before unlearning: none on the before row
    assert ("forget", "all", "mia_auc_reference") not in before
    assert ("forget", "all", "mia_auc_reference") in oracle
    unlearned = _rows(root, "ga")
    assert {f"privleak_{s}" for s in ("loss", "zlib", "min_k", "min_k_pp", "reference")} <= {
        metric for (_, _, metric) in unlearned
    }
    assert not any(split == "retain" and m.startswith("mia") for (split, _, m) in unlearned)


def test_the_report_has_a_privacy_table_figure_and_reading(privacy_run):
    root, _ = privacy_run
    files = write_report(root)
    table = root / "tables" / "finetuned-privacy.csv"
    assert table in files.tables
    with table.open(encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert {"mia_auc_min_k_pp_multimodal", "privleak_min_k_pp_text"} <= set(header)
    assert (root / "figures" / "privacy_finetuned-privacy.png") in files.figures
    report = (root / "report.md").read_text(encoding="utf-8")
    assert "Privacy: membership inference (finetuned)" in report
    assert "PrivLeak = (AUC - AUC of the oracle) / AUC of the oracle" in report  # the legend
    assert "By Min-K %++ PrivLeak in finetuned, before (" in report
    assert "still leak membership" in report


def test_without_a_holdout_there_are_no_rows_and_the_report_says_why(privacy_run):
    _, root = privacy_run
    assert not any(
        r.metric.startswith(("mia_", "privleak_")) for r in read_results(root / RESULTS_FILE)
    )
    write_report(root)
    report = (root / "report.md").read_text(encoding="utf-8")
    assert "In finetuned there are no membership-inference rows: the run names no holdout" in report


def test_the_world_names_its_own_holdout_and_a_trained_holdout_is_refused(small_world, tmp_path):
    from pathlib import Path

    from pulse.errors import ConfigError
    from pulse.protocol.cells import Population
    from pulse.protocol.engine import Engine
    from pulse.protocol.privacy import PrivacyConfig, privacy_plan
    from pulse.protocol.sources import Sources, WorldOracles
    from pulse.protocol.store import RunStore

    mllmu = small_world / "mllmu"
    people = sorted(p.id for p in read_mllmu(mllmu, "Full_Set"))
    celebrities = sorted(p.id for p in read_mllmu(mllmu, "Retain_Set"))
    world = Sources(mllmu=mllmu, world_oracles=WorldOracles(small_world, tmp_path, None))
    config = parse_config({"eval": {"general": False}, "train": {"pairs_per_id": 16}})
    engine = Engine(config, RunStore(tmp_path / "run", {}), world, progress=False)
    splits = {"forget": people[:3], "retain": people[3:6]}
    plan = privacy_plan(engine, "finetuned", Population(Path("m"), "Full_Set", people), splits)
    assert plan is not None and plan.members == tuple(people[:3])
    assert plan.holdout == tuple(sorted(p.id for p in read_mllmu(mllmu, "Holdout_Set")))
    # privacy.pairs_per_person, under train.pairs_per_id
    assert plan.pairs_per_person == PrivacyConfig().pairs_per_person < 16
    famous = Population(Path("m"), "Retain_Set", celebrities)
    plan = privacy_plan(engine, "pretrained", famous, {"forget": celebrities[:2]})
    assert plan is not None and all(h.startswith("hc") for h in plan.holdout)
    # local checkpoints: no holdout unless named; one that was trained on is refused
    local = Engine(config, RunStore(tmp_path / "local", {}), Sources(mllmu=mllmu), progress=False)
    group = Population(Path("m"), "Full_Set", people)
    assert privacy_plan(local, "finetuned", group, splits) is None
    named = parse_config({"eval": {"general": False}, "privacy": {"holdout": people[6]}})
    wrong = Engine(named, RunStore(tmp_path / "wrong", {}), Sources(mllmu=mllmu), progress=False)
    with pytest.raises(ConfigError, match=r"privacy.holdout: .* is one of the scenario's own"):
        privacy_plan(wrong, "finetuned", group, splits)
    off = parse_config({"eval": {"general": False}, "privacy": {"enabled": False}})
    quiet = Engine(off, RunStore(tmp_path / "off", {}), world, progress=False)
    assert privacy_plan(quiet, "finetuned", group, splits) is None


def test_with_repeats_each_seed_is_scored_on_the_pairs_it_unlearned(privacy_setup, tmp_path):
    from tests.protocol.test_repeats import by_repeat

    mllmu, forget, base = privacy_setup
    config = {
        **base,
        "train": {**base["train"], "pairs_per_id": 3},  # each seed unlearns its own 3 pairs
        "privacy": {"holdout": "Holdout_Set"},
    }
    store = run_protocol(parse_config({**config, "repeats": 2}), tmp_path / "two", progress=False)

    # Every request's state is scored on the members' pairs its own seed unlearned.
    pairs = train_pairs(mllmu, forget)
    place, counter = {}, Counter()
    for pair in pairs:
        place[id(pair)], counter[pair.entity_id] = (
            counter[pair.entity_id],
            counter[pair.entity_id] + 1,
        )
    scored = {}
    for path in (store.root / "evals").glob("*.json"):
        data = json.loads(path.read_text())
        if "pairs_of" in data:
            members = {(p["entity_id"], p["pair"]) for p in data["pairs"] if p["member"]}
            scored[data["state"], data["pairs_of"]["seed"]] = members
    unlearned = {}
    for request in (store.root / "requests").iterdir():
        seed = json.loads((request / "result.json").read_text())["seed"]
        drawn = sample_per_entity(pairs, 3, seed)
        unlearned[seed] = {(p.entity_id, place[id(p)]) for p in drawn}
        assert scored[f"request:{request.name}", seed] == unlearned[seed]
    assert set(unlearned) == {0, 1} and unlearned[0] != unlearned[1]
    # The before model and the oracle are scored on both seeds' pairs.
    untrained = {state for state, _ in scored if state.startswith("model:")}
    assert {(state, seed) for state in untrained for seed in (0, 1)} <= set(scored)

    rows = read_results(store.root / RESULTS_FILE)
    ga = by_repeat(rows, ("finetuned", "ga", "", 1))
    before = by_repeat(rows, ("finetuned", "before", "", 0))
    assert set(ga) == {None, 0, 1} and set(before) == {None}
    for metric in ("mia_auc_loss", "privleak_min_k_pp", "mia_auc_reference"):
        key = ("forget", "all", metric)
        pooled = ga[None][key]
        assert pooled.seeds == 2
        assert pooled.value == pytest.approx((ga[0][key].value + ga[1][key].value) / 2)
        assert pooled.low <= pooled.value <= pooled.high
    # The before row pools its membership rows over the seeds' pairs; its accuracy is one
    # evaluation.
    assert before[None]["forget", "all", "mia_auc_loss"].seeds == 2
    assert before[None]["forget", "all", "accuracy"].seeds == 1
    oracle = by_repeat(rows, ("finetuned", "oracle", "", 0))[None]["forget", "all", "privleak_loss"]
    assert (oracle.value, oracle.low, oracle.high, oracle.seeds) == (0, 0, 0, 2)

    # The second seed's rows are those of a run trained under that seed alone (its pairs,
    # its oracle on them).
    alone = run_protocol(parse_config({**config, "seed": 1}), tmp_path / "one", progress=False)
    plain = by_repeat(read_results(alone.root / RESULTS_FILE), ("finetuned", "ga", "", 1))[None]
    privacy = {k for k in plain if k[2].startswith(("mia_", "privleak_"))}
    assert privacy and {k: plain[k].value for k in privacy} == {k: ga[1][k].value for k in privacy}


def _people(sizes: dict[str, int]):
    from pulse.data.schema import TrainPair

    return [TrainPair(p, f"{p} q{i}", "a") for p, n in sizes.items() for i in range(n)]


def test_the_scored_pairs_lie_inside_the_pairs_each_request_unlearned():
    from pulse.protocol.privacy import PairPlan, _plan_sample

    # 100 people of 24-60 pairs; requests unlearn 16 of each, membership scores 4.
    pairs = _people({f"p{i:03d}": 24 + i % 37 for i in range(100)})
    unlearned = set(map(id, sample_per_entity(pairs, 16, 7)))
    alone = sample_per_entity(pairs, 4, 7)
    # A draw of 4 under the same seed is not always inside the draw of 16 (random.sample can
    # take another algorithm for another size): what the fix is for.
    assert any(id(p) not in unlearned for p in alone)
    plan = PairPlan(("p000",), ("p001",), 4, 0.2, 7, drawn=16)
    scored = _plan_sample(plan, pairs)
    assert set(map(id, scored)) <= unlearned
    assert Counter(p.entity_id for p in scored) == Counter({f"p{i:03d}": 4 for i in range(100)})


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_with_the_default_sizes_the_scored_pairs_are_what_they_were(seed):
    # privacy.pairs_per_person 8 inside train.pairs_per_id 16: the first 8 of the draw of 16 are
    # the draw of 8 for any number of pairs, so default plans keep their pairs and cache keys.
    from pulse.protocol.privacy import PairPlan

    pairs = _people({f"p{n}": n for n in range(1, 200)})
    assert sample_per_entity(pairs, 16, seed, first=8) == sample_per_entity(pairs, 8, seed)
    plan = PairPlan(("a",), ("b",), 8, 0.2, seed)
    assert "drawn" not in plan.identity() and plan.identity() == {
        "members": ("a",),
        "holdout": ("b",),
        "pairs_per_person": 8,
        "min_k": 0.2,
        "seed": seed,
    }
