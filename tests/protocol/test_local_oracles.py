"""Local oracles per scenario: ``scenarios.<name>.oracle`` beside the global ``models.oracle``;
the sequential and scope scenarios reuse the finetuned scenario's unless given their own, and
the pretrained scenario takes a base model pre-trained without the forget celebrities. Without
one, a table has no rows versus the oracle and its reading says why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.report.conftest import full_rows

from pulse.errors import ConfigError
from pulse.files import write_json
from pulse.methods.finetune import RECORD
from pulse.protocol.config import parse_config
from pulse.protocol.registry import scenario_names
from pulse.protocol.results import RESULTS_FILE, read_results
from pulse.protocol.runner import run_protocol
from pulse.protocol.sources import check_sources, local_sources
from pulse.report.reading import build_reading
from pulse.report.tables import build_tables

LOCAL = {"models": {"base": "b", "finetuned": "f"}}
FINETUNED_KIN = ("finetuned", "sequential", "scope")


def _with(scenarios: dict, models: dict | None = None):
    return parse_config(
        {"models": LOCAL["models"] if models is None else models, "scenarios": scenarios}
    )


def test_sequential_and_scope_reuse_the_finetuned_oracle_unless_given_their_own():
    config = _with({"finetuned": {"oracle": "ft-oracle"}, "scope": {"oracle": "scope-oracle"}})
    assert config.local_oracle("finetuned") == ("scenarios.finetuned.oracle", Path("ft-oracle"))
    assert config.local_oracle("sequential") == ("scenarios.finetuned.oracle", Path("ft-oracle"))
    assert config.local_oracle("scope") == ("scenarios.scope.oracle", Path("scope-oracle"))
    assert config.local_oracle("pretrained") is None and config.local_oracle("pebench") is None


def test_the_global_oracle_is_the_fine_tuned_models_and_a_scenarios_own_comes_first():
    models = {**LOCAL["models"], "oracle": "global"}
    config = _with({"sequential": {"oracle": "seq"}}, models)
    for name in ("finetuned", "scope"):
        assert config.local_oracle(name) == ("models.oracle", Path("global"))
    assert config.local_oracle("sequential") == ("scenarios.sequential.oracle", Path("seq"))
    # Not the base model's: the pretrained scenario's forget set is another.
    assert config.local_oracle("pretrained") is None


def test_the_pretrained_scenario_takes_a_local_checkpoint_or_true():
    config = _with({"pretrained": {"oracle": "pt-oracle"}})
    assert config.local_oracle("pretrained") == ("scenarios.pretrained.oracle", Path("pt-oracle"))
    assert config.scenarios.pretrained.oracle == Path("pt-oracle")
    assert _with({"pretrained": {"oracle": True}}).scenarios.pretrained.oracle is True
    assert _with({"pretrained": {"oracle": True}}).local_oracle("pretrained") is None


def test_an_unset_oracle_leaves_the_digest_and_a_set_one_changes_it():
    plain = parse_config(LOCAL)
    assert plain.digest() == parse_config({**LOCAL, "scenarios": {"scope": {}}}).digest()
    for name in (*FINETUNED_KIN, "pretrained"):
        assert _with({name: {"oracle": "o"}}).digest() != plain.digest(), name


@pytest.mark.parametrize(
    ("scenarios", "models", "message"),
    [
        (
            {"scope": {"oracle": "o"}},
            {"base": "b"},
            r"^config: scenarios\.scope\.oracle: a local oracle belongs to a local finetuned "
            r"checkpoint \(give models\.finetuned\)$",
        ),
        (
            {"pretrained": {"oracle": "o"}},
            {"finetuned": "f"},
            r"^config: scenarios\.pretrained\.oracle: .* base checkpoint \(give models\.base\)$",
        ),
        # With the world the oracles are trained, never given.
        (
            {"finetuned": {"oracle": "o"}},
            {},
            r"^config: scenarios\.finetuned\.oracle: .*\(give models\.finetuned\)$",
        ),
        # A disabled section's oracle is checked too: the others may reuse it.
        (
            {"finetuned": {"enabled": False, "oracle": "o"}},
            {"base": "b"},
            r"^config: scenarios\.finetuned\.oracle: ",
        ),
        (
            {"sequential": {"oracle": ["a", "b"]}},
            None,
            r"^config: scenarios\.sequential\.oracle: ",
        ),
    ],
)
def test_a_misplaced_oracle_is_one_line_naming_the_field(scenarios, models, message):
    with pytest.raises(ConfigError, match=message):
        _with(scenarios, models)


def test_a_missing_local_oracle_is_named_before_anything_runs(tmp_path, small_world, tiny_models):
    data = {
        "mllmu": str(small_world / "mllmu"),
        "mmbench": str(small_world / "mmbench" / "dev.tsv"),
    }
    models = {"base": str(tiny_models / "base"), "finetuned": str(tiny_models / "finetuned")}
    for name in ("sequential", "pretrained"):
        enabled = {n: {"enabled": n == name} for n in scenario_names()}
        enabled[name]["oracle"] = str(tmp_path / "absent")
        config = parse_config({"models": models, "data": data, "scenarios": enabled})
        with pytest.raises(
            ConfigError, match=rf"^scenarios\.{name}\.oracle: .* is not an existing"
        ):
            check_sources(config, local_sources(config))
        # A folder that holds no model is refused too, by the same key.
        (tmp_path / "absent").mkdir(exist_ok=True)
        with pytest.raises(ConfigError, match=rf"^scenarios\.{name}\.oracle: "):
            check_sources(config, local_sources(config))
        (tmp_path / "absent").rmdir()


def test_every_scenario_without_an_oracle_says_why_and_has_no_empty_column():
    tables = build_tables(full_rows())  # a run with every scenario and no oracle
    assert {t.kind for t in tables} == {"finetuned", "pretrained", "sequential", "scope", "pebench"}
    reading = build_reading(tables)
    for table in tables:
        assert table.oracle is None
        assert not [c for c in table.columns if c.metric in ("forget_quality", "oracle_distance")]
        (why,) = [s for s in reading if s.startswith(f"In {table.scenario} there is no oracle")]
        if table.kind in FINETUNED_KIN:
            assert "models.oracle" in why and "scenarios.finetuned.oracle" in why
        if table.kind == "pretrained":
            assert "scenarios.pretrained.oracle" in why
    assert not any("Against the oracle" in s for s in reading)


def test_a_local_pretrained_oracle_gets_its_row(small_world, tiny_models, tmp_path, mini_config):
    """The pretrained scenario with a local oracle: the base model itself stands in for one
    here (a plumbing check: before against it has forget quality 1 and distance 0)."""
    oracle = tmp_path / "oracle"
    shutil.copytree(tiny_models / "base", oracle)
    mini_config["methods"] = [{"method": "ga"}]
    mini_config["scenarios"] = {
        "pretrained": {"top": 6, "forget": 2, "oracle": str(oracle)},
        **{k: {"enabled": False} for k in ("finetuned", "sequential", "scope", "pebench")},
    }
    store = run_protocol(parse_config(mini_config), tmp_path / "run", progress=False)
    rows = read_results(store.root / RESULTS_FILE)
    cells = {(r.method, r.split, r.modality, r.metric): r.value for r in rows}
    assert cells[("oracle", "forget", "all", "forget_quality")] == 1.0
    assert cells[("before", "forget", "all", "forget_quality")] == 1.0
    assert cells[("before", "forget", "all", "oracle_distance")] == 0.0
    assert ("ga", "forget", "all", "oracle_distance") in cells

    # One recorded without other people is refused by its own key.
    forget = (store.root / "splits" / "pretrained" / "forget.txt").read_text().split()
    write_json(oracle / RECORD, {"excluded": forget[:1]})
    with pytest.raises(ConfigError, match=r"^scenarios\.pretrained\.oracle: .* without 1 people"):
        run_protocol(parse_config(mini_config), tmp_path / "run", progress=False)
