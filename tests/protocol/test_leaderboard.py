"""The leaderboard: a learning-rate sweep, then each method at its best learning rate on the
ranked scenarios under two training seeds, scored by a stated rule; both are normal run
directories that resume; the ranked table is written as Markdown, CSV and HTML."""

from __future__ import annotations

import csv
import io
import json

import pytest
import yaml

from pulse.errors import ConfigError
from pulse.protocol.cells import CellId
from pulse.protocol.config import parse_config
from pulse.protocol.leaderboard import (
    LeaderboardConfig,
    base_data,
    board_config,
    load_leaderboard_config,
    run_leaderboard,
    sweep_config,
    sweep_entries,
)
from pulse.protocol.trajectory import SeedPath, matched_to_rows, pooled
from pulse.report.leaderboard import Entry, standing, table_rows
from pulse.report.ranking import (
    MATCHED_RULE,
    ORACLE_GAP,
    Estimate,
    Standing,
    describe,
    weights_of,
)


def test_the_embedded_default_is_the_documented_file():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    written = load_leaderboard_config(root / "configs" / "leaderboard.yaml")
    assert written == LeaderboardConfig()


def test_the_sweep_covers_every_method_and_a_training_free_one_once(mini_config):
    config = LeaderboardConfig(methods=["npo", "manu"], lr_factors=[0.5, 2.0])
    entries = sweep_entries(config, 1e-3)
    assert entries == [
        {"method": "npo", "params": {}, "lr": [5e-4, 2e-3]},
        {"method": "manu", "params": {}},
    ]
    # the run config expands the sweep (pulse.protocol.config.expand_sweeps)
    run = parse_config({**mini_config, "methods": entries})
    assert [(m.name, m.lr) for m in run.methods] == [
        ("npo[lr=0.0005]", 5e-4),
        ("npo[lr=0.002]", 2e-3),
        ("manu", None),
    ]
    assert {e["method"] for e in sweep_entries(LeaderboardConfig(), 1e-3)} >= {"siu", "viker"}


def test_the_matched_rule_reads_the_path_at_the_target():
    base = {"retain_before": Estimate(0.8), "general_before": Estimate(0.5)}
    reached = Standing(
        "finetuned",
        "x",
        {
            **base,
            "matched_step": Estimate(12.5),
            "matched_target": Estimate(0.3),
            "matched_retain": Estimate(0.7),
            "matched_general": Estimate(0.45),
            "retain": Estimate(0.2),  # the end of the budget does not count once matched
        },
    )
    w = weights_of(MATCHED_RULE, {})
    assert MATCHED_RULE.score(reached, w) == pytest.approx(0.1 + 0.05)
    missed = Standing(
        "finetuned",
        "x",
        {
            **base,
            "matched_step": Estimate(-1.0),
            "matched_target": Estimate(0.3),
            "forget": Estimate(0.5),
            "retain": Estimate(0.75),
            "general": Estimate(0.5),
        },
    )
    assert MATCHED_RULE.score(missed, w) == pytest.approx(0.2 + 0.05)
    no_path = Standing("finetuned", "x", {"forget_distance": Estimate(-0.1)})
    assert MATCHED_RULE.score(no_path, w) == ORACLE_GAP.score(no_path, w) == pytest.approx(0.1)


def test_the_table_says_how_many_training_seeds_reached_the_target():
    reaches = SeedPath([0, 10], [0.9, 0.1], {"retain": [0.8, 0.4]})
    stays = SeedPath([0, 10], [0.9, 0.7], {"retain": [0.8, 0.7]})
    cell = CellId("finetuned", "ga")
    for paths, said in (([reaches, stays], "1 of 2"), ([reaches, reaches], "2 of 2")):
        rows = matched_to_rows(cell, pooled(paths, 0.5), "matched.target")
        mine = standing(rows, "finetuned", "ga")
        assert mine is not None and mine.values["matched_seeds"] == Estimate(float(said[0]), high=2)
        entry = Entry("ga", 0.001, {"finetuned": mine}, {"finetuned": 0.1}, None, 2)
        header, table = table_rows([entry], ["finetuned"])
        assert table[0][header.index("finetuned: matched: seeds reaching it")] == said
    one = standing(matched_to_rows(cell, pooled([reaches], 0.5), "t"), "finetuned", "ga")
    assert one is not None and "matched_seeds" not in one.values  # one seed: nothing to say


def test_the_default_rule_is_the_stated_formula():
    s = Standing(
        "finetuned",
        "x",
        {
            "forget_distance": Estimate(0.10),
            "retain_distance": Estimate(-0.05),
            "general_change": Estimate(0.02),  # a gain is not rewarded
        },
    )
    weights = weights_of(ORACLE_GAP, {"retain": 2.0})
    assert ORACLE_GAP.score(s, weights) == pytest.approx(0.10 + 2.0 * 0.05)
    assert "2·(retain accuracy" in describe(ORACLE_GAP, weights)
    no_oracle = Standing("pretrained", "x", {"forget": Estimate(0.6), "chance": Estimate(0.25)})
    assert ORACLE_GAP.score(no_oracle, weights) == pytest.approx(0.35)
    # without an oracle, retain lost counts against the model before (it is not free)
    lost = Standing(
        "pretrained",
        "x",
        {**no_oracle.values, "retain": Estimate(0.5), "retain_before": Estimate(0.9)},
    )
    assert ORACLE_GAP.score(lost, weights) == pytest.approx(0.35 + 2.0 * 0.4)


def test_scenarios_the_leaderboard_does_not_rank_are_off_before_the_run_config_is_checked(
    mini_config, tmp_path
):
    # a chain of 9 requests over 4 forget people: refused by a run, moot for a leaderboard
    run = {**mini_config, "scenarios": {**mini_config["scenarios"], "sequential": {"requests": 9}}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run))
    data = base_data(LeaderboardConfig(run=tmp_path / "run.yaml"), tmp_path)
    on = {name for name, spec in data["scenarios"].items() if spec.get("enabled")}
    assert on == {"finetuned", "pretrained"}


def test_the_runs_keep_what_the_run_config_left_unset(tmp_path):
    """Written out as plain data and read back, the run config keeps its unset keys unset: the
    embedded default's scenarios evaluate along their requests (the path the matched rule
    reads) in the sweep and on the board as in `pulse run`, and precision is the device's."""
    config = LeaderboardConfig()
    data = base_data(config, tmp_path)
    plain = parse_config({})
    chosen = {"ga": {"method": "ga", "params": {}, "lr": 1e-4}}
    for run in (sweep_config(config, data), board_config(config, data, chosen)):
        assert "bf16" not in run.train.model_fields_set
        for name in ("finetuned", "pretrained"):
            along = run.train_of(name)
            assert along.eval_every is not None
            assert along.eval_every == plain.train_of(name).eval_every
            # the matched rule charges general capability at the crossing: measured there
            assert along.eval_general
    # another rule leaves it off; a run config that says otherwise is kept
    gap = LeaderboardConfig(rule={"name": "oracle_gap"})
    assert not sweep_config(gap, base_data(gap, tmp_path)).train_of("finetuned").eval_general
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"train": {"eval_general": False}}))
    mine = LeaderboardConfig(run=tmp_path / "run.yaml")
    assert not sweep_config(mine, base_data(mine, tmp_path)).train_of("finetuned").eval_general


def test_the_sweep_measures_membership_only_where_the_rule_scores_it(tmp_path):
    """The privacy rule reads PrivLeak: a sweep without membership rows would score no entry
    and keep the middle learning rate for every method."""
    privacy = LeaderboardConfig(rule={"name": "privacy"})
    assert sweep_config(privacy, base_data(privacy, tmp_path)).privacy.enabled
    gap = LeaderboardConfig(rule={"name": "oracle_gap"})
    assert not sweep_config(gap, base_data(gap, tmp_path)).privacy.enabled  # as before
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"privacy": {"enabled": False}}))
    off = LeaderboardConfig(run=tmp_path / "run.yaml", rule={"name": "privacy"})
    with pytest.raises(ConfigError, match=r"^rule: privacy ranks by PrivLeak, which the run"):
        sweep_config(off, base_data(off, tmp_path))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["methods=[nope]"], "unknown unlearning method 'nope'"),
        (["rule.name=best"], "unknown ranking rule 'best'"),
        (["rule.weights.nope=1"], "unknown weight 'nope'"),
        (["lr_factors=[1, 1]"], "expected distinct factors > 0"),
        (["scenarios=[sequential]"], "scenarios.0"),
    ],
)
def test_bad_leaderboard_configs_are_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_leaderboard_config(None, overrides)


def test_a_small_leaderboard_writes_its_table_and_resumes(mini_config, tmp_path):
    run = tmp_path / "run.yaml"
    # The small world's never-trained people as the holdout, and the base model (which never
    # saw the fictitious people) as their oracle: the membership columns are filled.
    small = {
        **mini_config,
        "train": {"max_steps": 1, "batch_size": 4},
        "privacy": {"holdout": "Holdout_Set"},
    }
    small["models"] = {**mini_config["models"], "oracle": mini_config["models"]["base"]}
    run.write_text(yaml.safe_dump(small))
    config = LeaderboardConfig(
        run=run,
        methods=["ga"],
        lr_factors=[1.0],
        repeats=1,
        scenarios=["finetuned"],
        attacks=["quantize"],
    )
    board = run_leaderboard(config, tmp_path / "lb", progress=False)
    rows = list(csv.DictReader(io.StringIO((board / "leaderboard.csv").read_text())))
    assert [(r["rank"], r["method"], r["lr"], r["seeds"]) for r in rows] == [
        ("1", "ga", "0.001", "1")
    ]
    # membership inference and recovery under each quantization, with their intervals
    for column in ("MIA AUC", "PrivLeak", "recovery quantize-8", "recovery quantize-4"):
        value = rows[0][f"finetuned: {column}"]
        assert value and "[" in value, (column, value)
    stages = json.loads((board / "manifest.json").read_text())["stages"]
    assert run_leaderboard(config, tmp_path / "lb", progress=False) == board
    assert json.loads((board / "manifest.json").read_text())["stages"] == stages  # none reran


@pytest.mark.slow
def test_a_leaderboard_runs_ranks_and_resumes(mini_config, tmp_path):
    run = tmp_path / "run.yaml"
    train = {"max_steps": 2, "batch_size": 4, "eval_every": "1 steps"}
    run.write_text(yaml.safe_dump({**mini_config, "train": train}))
    spec = tmp_path / "board.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "run": "run.yaml",
                "methods": ["ga", "manu"],
                "lr_factors": [0.5, 2.0],
                "repeats": 2,
                "rule": {"name": "oracle_gap", "weights": {"general": 0.5}},
            }
        )
    )
    config = load_leaderboard_config(spec)
    board = run_leaderboard(config, tmp_path / "lb", progress=False)
    assert (tmp_path / "lb" / "sweep" / "results.jsonl").is_file()
    assert (board / "report.html").is_file() and (board / "leaderboard.html").is_file()
    rows = list(csv.DictReader(io.StringIO((board / "leaderboard.csv").read_text())))
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores)  # ranked by the rule's score, lowest first
    assert {r["method"] for r in rows} == {"ga", "manu"}
    ga = next(r for r in rows if r["method"] == "ga")
    assert float(ga["lr"]) in (5e-4, 2e-3)  # 0.5 and 2 × the run's lr (1e-3)
    assert ga["seeds"] == "2" and ga["rank"] in ("1", "2")
    ranks = [int(r["rank"]) for r in rows]  # tied scores share a rank
    for k in range(1, len(rows)):
        tied = float(rows[k]["score"]) == float(rows[k - 1]["score"])
        assert (ranks[k] == ranks[k - 1]) == tied
    assert "finetuned: forget acc." in rows[0] and "pretrained: retain acc." in rows[0]
    text = (board / "leaderboard.md").read_text()
    assert "Rule `oracle_gap`" in text and "0.5·(general capability lost" in text
    assert "Learning-rate sweep" in text and "| ga | 0.002 |" in text
    assert "finetuned: matched: at step" in rows[0]  # evaluated along the request

    before = (board / "manifest.json").read_text()
    again = run_leaderboard(config, tmp_path / "lb", progress=False)  # resumes: nothing reruns
    assert again == board
    stages = json.loads((board / "manifest.json").read_text())["stages"]
    assert stages == json.loads(before)["stages"]
