"""The oracle in a miniature run: its row beside before in the three scenarios of fine-tuned
knowledge, and every state compared with it (forget quality, distance to the oracle)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
from tests.fixtures.tiny import FAST_WORLD

from pulse.data.mllmu import read_mllmu
from pulse.errors import ConfigError
from pulse.files import write_json
from pulse.methods.finetune import RECORD
from pulse.protocol.config import parse_config
from pulse.protocol.engine import Engine
from pulse.protocol.results import RESULTS_FILE, read_results
from pulse.protocol.runner import run_protocol, run_scenarios
from pulse.protocol.sources import WorldOracles, local_sources
from pulse.protocol.store import RunStore
from pulse.report import write_report
from pulse.world.oracle import train_finetuned_oracle


def _config(small_world, tiny_models, forget, retain, oracle):
    return parse_config(
        {
            "models": {
                "base": str(tiny_models / "base"),
                "finetuned": str(tiny_models / "finetuned"),
                "oracle": str(oracle),
            },
            "data": {
                "mllmu": str(small_world / "mllmu"),
                "mmbench": str(small_world / "mmbench" / "dev.tsv"),
            },
            "train": {"max_steps": 2, "batch_size": 4, "pairs_per_id": 3},
            "eval": {"general_questions": 6},
            "methods": [{"method": "ga"}],
            "scenarios": {
                "finetuned": {"forget": ",".join(forget), "retain": ",".join(retain)},
                "pretrained": {"enabled": False},
                "sequential": {"requests": 2, "batch": False},
                "scope": {"scopes": ["llm"]},
                "pebench": {"enabled": False},
            },
        }
    )


@pytest.fixture(scope="module")
def oracle_run(small_world, tiny_models, tmp_path_factory):
    people = sorted(p.id for p in read_mllmu(small_world / "mllmu", "Full_Set"))[:8]
    forget, retain = people[:4], people[4:]
    models = tmp_path_factory.mktemp("oracle") / "models"
    shutil.copytree(tiny_models, models)
    oracle = train_finetuned_oracle(
        small_world, models, forget, FAST_WORLD, progress=False, check=False
    )
    config = _config(small_world, models, forget, retain, oracle.path)
    store = run_protocol(config, tmp_path_factory.mktemp("oracle-run") / "run", progress=False)
    return store.root, forget, retain


def _cell(rows, scenario, method, request=None):
    return {
        (r.split, r.modality, r.metric): r
        for r in rows
        if r.scenario == scenario
        and r.method == method
        and (request is None or r.request == request)
    }


def test_the_oracle_row_stands_beside_before(oracle_run):
    root, forget, _ = oracle_run
    rows = read_results(root / RESULTS_FILE)
    for scenario in ("finetuned", "sequential", "scope"):
        oracle = _cell(rows, scenario, "oracle")
        assert oracle, scenario
        assert {r.request for r in rows if r.scenario == scenario and r.method == "oracle"} == {0}
        # Against itself: indistinguishable, at zero distance.
        assert oracle[("forget", "all", "forget_quality")].value == 1.0
        assert oracle[("forget", "all", "oracle_distance")].value == 0.0
        assert oracle[("forget", "all", "accuracy")].n == len(forget) * 10
        # Its change against before, on the same people.
        assert oracle[("forget", "all", "accuracy")].change_low is not None


def test_every_state_is_compared_with_the_oracle(oracle_run):
    root, forget, _ = oracle_run
    rows = read_results(root / RESULTS_FILE)
    before = _cell(rows, "finetuned", "before")
    ga = _cell(rows, "finetuned", "ga")
    oracle = _cell(rows, "finetuned", "oracle")
    for cell in (before, ga):
        for modality in ("multimodal", "text", "all"):
            quality = cell[("forget", modality, "forget_quality")]
            assert 0 <= quality.value <= 1
            for split in ("forget", "retain"):
                distance = cell[(split, modality, "oracle_distance")]
                accuracy = cell[(split, modality, "accuracy")].value
                expected = accuracy - oracle[(split, modality, "accuracy")].value
                assert distance.value == pytest.approx(expected)
                assert distance.low - 1e-9 <= distance.value <= distance.high + 1e-9
        assert ("retain", "all", "forget_quality") not in cell
        assert cell[("forget", "all", "truth_ratio")].value > 0
    # The sequential scenario compares each request on the people forgotten by then.
    first = _cell(rows, "sequential", "ga", request=1)
    assert first[("forgotten", "all", "forget_quality")].n < len(forget) * 10
    assert ("pending", "all", "oracle_distance") not in first
    last = _cell(rows, "sequential", "ga", request=2)
    assert last[("forgotten", "all", "forget_quality")].n == len(forget) * 10


def test_the_report_shows_the_oracle(oracle_run):
    root, _, _ = oracle_run
    report = write_report(root)
    markdown = report.markdown.read_text()
    assert "| oracle |" in markdown.replace("  ", " ")
    assert "Forget quality" in markdown and "Distance to the oracle" in markdown
    assert "Against the oracle, before" in markdown
    assert any("tradeoff_finetuned" in f.name for f in report.figures)


def test_an_oracle_of_another_forget_set_is_refused(small_world, tiny_models, tmp_path):
    people = sorted(p.id for p in read_mllmu(small_world / "mllmu", "Full_Set"))[:8]
    oracle = tmp_path / "oracle"
    shutil.copytree(tiny_models / "finetuned", oracle)
    write_json(oracle / RECORD, {"excluded": people[:2]})
    config = _config(small_world, tiny_models, people[:4], people[4:], oracle)
    with pytest.raises(ConfigError, match=r"models\.oracle: .* without 2 people, not this run's"):
        run_protocol(config, tmp_path / "run", progress=False)


def test_models_oracle_belongs_to_a_local_finetuned_model():
    with pytest.raises(ConfigError, match="oracle"):
        parse_config({"models": {"base": "b", "oracle": "o"}})
    with pytest.raises(ConfigError, match="'oracle' is reserved"):
        parse_config({"methods": [{"method": "ga", "label": "oracle"}]})
    # Unset, it leaves the digest as it was (tests/protocol/test_config.py pins it); set, not.
    plain = parse_config({"models": {"finetuned": "f"}})
    with_oracle = parse_config({"models": {"finetuned": "f", "oracle": "o"}})
    assert plain.digest() != with_oracle.digest()


def test_the_pretrained_oracle_is_trained_after_the_probe(small_world, tiny_models, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models)
    config = parse_config(
        {
            "models": {"base": str(models / "base"), "finetuned": str(models / "finetuned")},
            "data": {
                "mllmu": str(small_world / "mllmu"),
                "mmbench": str(small_world / "mmbench" / "dev.tsv"),
            },
            "train": {"max_steps": 2, "batch_size": 4},
            "eval": {"general_questions": 6},
            "methods": [{"method": "ga"}],
            "scenarios": {
                "pretrained": {"top": 6, "forget": 2, "oracle": True},
                **{k: {"enabled": False} for k in ("finetuned", "sequential", "scope", "pebench")},
            },
        }
    )
    store = RunStore.open(tmp_path / "run", config)
    world = WorldOracles(small_world, models, FAST_WORLD)
    sources = replace(local_sources(config), world_oracles=world)
    run_scenarios(Engine(config, store, sources, progress=False))
    rows = read_results(store.root / RESULTS_FILE)
    forget = (store.root / "splits" / "pretrained" / "forget.txt").read_text().split()
    oracle = _cell(rows, "pretrained", "oracle")
    assert oracle[("forget", "all", "forget_quality")].value == 1.0
    assert ("forget", "all", "forget_quality") in _cell(rows, "pretrained", "ga")
    (trained,) = (models / "oracles").glob("pretrained-*")
    stages = json.loads((models / "manifest.json").read_text())["stages"]
    assert stages[f"oracles/{trained.name}"]["forget"] == sorted(forget)
