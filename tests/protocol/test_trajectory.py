"""Trajectories along a request, matched forgetting and early stopping in a miniature run;
the interpolation and its bootstrap on hand-made paths."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from pulse.data.schema import ItemKind, Modality
from pulse.errors import ConfigError
from pulse.eval.records import ItemRecord
from pulse.protocol.cells import CellId
from pulse.protocol.config import parse_config
from pulse.protocol.measurement import Measurement
from pulse.protocol.results import RESULTS_FILE, dump_rows, read_results, row_from_dict
from pulse.protocol.runner import run_protocol
from pulse.protocol.trajectory import (
    SeedPath,
    at,
    crossing,
    matched,
    matched_to_rows,
    path_at_target,
    pooled,
)
from pulse.report.matched import reached_text


def test_a_path_reaches_the_target_between_two_points():
    steps, forget = [0, 10, 20, 30], [0.9, 0.7, 0.3, 0.1]
    where = crossing(forget, 0.5)
    assert where == (2, pytest.approx(0.5))
    assert at(steps, where) == pytest.approx(15.0)
    found = matched(steps, forget, {"retain": [0.8, 0.8, 0.6, 0.2]}, 0.5)
    assert found.step == pytest.approx(15.0)
    assert found.values["retain"].value == pytest.approx(0.7)
    # The first crossing counts, even when the path comes back up later.
    assert crossing([0.9, 0.4, 0.6, 0.2], 0.5) == (1, pytest.approx(0.8))
    # On a point exactly, and already at the target before anything trained.
    assert matched(steps, forget, {"retain": [1, 2, 3, 4]}, 0.3).values["retain"].value == 3
    assert crossing([0.2, 0.1], 0.5) == (0, 1.0)


def test_a_path_that_never_reaches_the_target_says_how_far_it_got():
    found = matched([0, 5, 9], [0.9, 0.6, 0.65], {"retain": [0.8, 0.7, 0.7]}, 0.5)
    assert found.step is None and found.values == {} and found.lowest == (0.6, 5)


def test_the_interval_comes_from_the_replicates_that_reach_the_target():
    steps, forget, retain = [0, 10], [1.0, 0.0], [1.0, 0.0]
    targets = np.array([0.4, 0.5, 0.6] * 100)
    replicates = (np.array([forget] * 300), targets, {"retain": np.array([retain] * 300)})
    found = matched(steps, forget, {"retain": retain}, 0.5, replicates)
    assert found.reached == 1.0
    assert found.target.low == pytest.approx(0.4) and found.target.high == pytest.approx(0.6)
    value = found.values["retain"]
    assert value.value == pytest.approx(0.5) and (value.low, value.high) == pytest.approx(
        (0.4, 0.6)
    )
    # Too few replicates reach it: no interval, said by the share.
    paths = np.array([forget] * 10 + [[1.0, 0.9]] * 290)
    found = matched(steps, forget, {"retain": retain}, 0.5, (paths, targets, replicates[2]))
    assert found.reached < 0.95 and found.values["retain"].low is None


def test_training_seeds_are_pooled_each_at_its_own_crossing():
    # Seed 1 reaches 0.5 at step 15 with retain 0.7; seed 2 at step 5 with retain 0.5.
    one = SeedPath([0, 10, 20], [0.9, 0.7, 0.3], {"retain": [0.8, 0.8, 0.6]})
    two = SeedPath([0, 10, 20], [0.9, 0.1, 0.1], {"retain": [0.6, 0.4, 0.4]})
    found = pooled([one, two], 0.5)
    assert found.seeds == found.seeds_reached == 2
    assert found.step == pytest.approx((15 + 5) / 2)
    assert found.values["retain"].value == pytest.approx((0.7 + 0.5) / 2)
    # Not the value of the mean path at its crossing (that would be retain 0.6 at step 10).
    mean_path = matched([0, 10, 20], [0.9, 0.4, 0.2], {"retain": [0.7, 0.6, 0.5]}, 0.5)
    assert found.values["retain"].value != pytest.approx(mean_path.values["retain"].value)


def test_a_seed_that_never_reaches_the_target_is_counted_and_said():
    reaches = SeedPath([0, 10], [0.9, 0.1], {"retain": [0.8, 0.4]})
    stays = SeedPath([0, 10], [0.9, 0.7], {"retain": [0.8, 0.7]})
    found = pooled([reaches, stays], 0.5)
    assert (found.seeds, found.seeds_reached) == (2, 1)
    assert found.values["retain"].value == pytest.approx(0.6)  # the seed that reached it
    rows = matched_to_rows(CellId("finetuned", "ga"), found, "matched.target")
    assert "reached by 1 of 2 training seeds" in rows[0].detail
    # said as fields too, and kept through results.jsonl
    assert [(r.seeds, r.seeds_reached) for r in rows] == [(2, 1), (2, None)]
    assert [row_from_dict(json.loads(dump_rows([r]))) for r in rows] == rows
    assert reached_text(rows[0]).endswith(" (1 of 2 seeds)")
    alone = matched_to_rows(CellId("finetuned", "ga"), pooled([reaches], 0.5), "t")[0]
    assert "seeds" not in reached_text(alone)
    nowhere = pooled([stays, stays], 0.5)
    assert nowhere.step is None and nowhere.lowest == (0.7, 10)
    rows = matched_to_rows(CellId("finetuned", "ga"), nowhere, "matched.target")
    assert "not reached" in rows[0].detail and "none of 2 training seeds" in rows[0].detail
    assert [r.split for r in rows] == ["forget"]
    assert (rows[0].seeds, rows[0].seeds_reached) == (2, 0)


def test_seeds_reached_is_checked_when_read_back():
    row = matched_to_rows(
        CellId("finetuned", "ga"), pooled([SeedPath([0, 10], [0.9, 0.1], {})] * 2, 0.5), "t"
    )[0]
    data = json.loads(dump_rows([row]))
    assert data["seeds_reached"] == 2
    with pytest.raises(ValueError, match="'seeds_reached' must be null or a count up to 'seeds'"):
        row_from_dict({**data, "seeds_reached": 3})
    one_seed = matched_to_rows(
        CellId("finetuned", "ga"), pooled([SeedPath([0, 10], [0.9, 0.1], {})], 0.5), "t"
    )[0]
    assert "seeds_reached" not in json.loads(dump_rows([one_seed]))


def test_the_interval_resamples_the_seeds_too():
    # No spread over people (every replicate draws the same path): what is left is the seeds'.
    def constant(retain_end):
        forget, retain = [1.0, 0.0], [1.0, retain_end]
        return SeedPath(
            [0, 10],
            forget,
            {"retain": retain},
            np.array([forget] * 400),
            {"retain": np.array([retain] * 400)},
        )

    targets = np.full(400, 0.5)
    alone = pooled([constant(0.2)], 0.5, targets)
    assert alone.values["retain"].low == pytest.approx(alone.values["retain"].high)
    picks = np.random.default_rng(0).integers(0, 2, size=(400, 2))
    both = pooled([constant(0.2), constant(0.6)], 0.5, targets, picks)
    value = both.values["retain"]
    assert value.value == pytest.approx((0.6 + 0.8) / 2)
    assert (value.low, value.high) == pytest.approx((0.6, 0.8))  # both seeds picked twice
    # One seed that never reaches its target in any replicate: most replicates pick it.
    never = replace(constant(0.6), replicate_forget=np.ones((400, 2)))
    missed = pooled([constant(0.2), never], 0.5, targets, picks)
    assert 0 < missed.reached < 0.95 and missed.values["retain"].low is None


def _state(correct: dict[str, list[bool]]) -> Measurement:
    records = [
        ItemRecord(f"{who}{i}", who, ItemKind.MCQ, Modality.TEXT, "A", "A", correct=c)
        for who, answers in correct.items()
        for i, c in enumerate(answers)
    ]
    return Measurement(records, None, {})


def test_identical_seeds_give_one_seeds_value_and_interval():
    splits = {"forget": ["a", "b", "c"], "retain": ["d", "e"]}
    right, wrong = [True, True], [False, False]
    states = [
        _state({"a": right, "b": right, "c": right, "d": right, "e": right}),
        _state({"a": wrong, "b": right, "c": wrong, "d": right, "e": [True, False]}),
        _state({"a": wrong, "b": wrong, "c": wrong, "d": [True, False], "e": wrong}),
    ]
    one = path_at_target([([0, 5, 10], states)], splits, 0.5, None, resamples=300)
    two = path_at_target([([0, 5, 10], states)] * 2, splits, 0.5, None, resamples=300)
    assert one is not None and two is not None and one.step is not None
    assert (two.seeds, two.seeds_reached) == (2, 2)
    assert two.step == pytest.approx(one.step)
    assert two.values == one.values and two.counts == one.counts == {"forget": 3, "retain": 2}
    # Other questions in one seed's states: not comparable.
    other = [_state({"a": right, "b": right, "c": [True]})] * 3
    assert path_at_target([([0, 5, 10], states), ([0, 5, 10], other)], splits, 0.5, None) is None


def only_finetuned(mini_config, **train):
    config = {**mini_config, "methods": [{"method": "ga"}, {"method": "npo"}]}
    config["scenarios"] = {
        name: {"enabled": name == "finetuned"} for name in mini_config["scenarios"]
    }
    config["scenarios"]["finetuned"] |= {"people": 4}
    config["train"] = {**mini_config["train"], "max_steps": 4, "pairs_per_id": 3, **train}
    return config


def test_points_along_a_request_and_matched_forgetting(mini_config, tmp_path):
    config = only_finetuned(mini_config, eval_every="2 steps", eval_general=True)
    config["matched"] = {"target": 0.3}
    store = run_protocol(parse_config(config), tmp_path / "run", progress=False)
    rows = read_results(store.root / RESULTS_FILE)
    points = [r for r in rows if r.on_path and r.method == "ga"]
    assert sorted({r.step for r in points}) == [0, 2, 4]
    cell = [r for r in rows if r.cell == ("finetuned", "ga", "", 1) and r.step is None]
    final = {(r.split, r.modality, r.metric): r.value for r in cell}
    last = {(r.split, r.modality, r.metric): r.value for r in points if r.step == 4}
    assert last == {k: v for k, v in final.items() if k in last}  # its own state
    assert ("general", "all", "circular") in last and ("retain", "all", "accuracy") in last
    before = {(r.split, r.modality, r.metric): r.value for r in rows if r.method == "before"}
    first = {(r.split, r.modality, r.metric): r.value for r in points if r.step == 0}
    assert first == {k: v for k, v in before.items() if k in first}
    assert all(r.low is not None for r in points if r.metric == "accuracy" and r.step == 2)
    # The point states are cached with their per-item records.
    record = json.loads(next((store.root / "requests").glob("*/result.json")).read_text())
    assert record["eval_steps"] == [2]
    matched_rows = {(r.method, r.split): r for r in rows if r.metric == "matched"}
    target = matched_rows[("ga", "forget")]
    assert target.value == 0.3 and target.detail.startswith("target: matched.target")
    if target.step is not None:
        assert 0 <= target.step <= 4
        retain = matched_rows[("ga", "retain")]
        assert retain.step == target.step and 0 <= retain.value <= 1
    else:
        assert "not reached" in target.detail and ("ga", "retain") not in matched_rows
    # Resuming reads everything back: no stage is computed again.
    stages = {p: p.stat().st_mtime_ns for p in (store.root / "stages").rglob("*.jsonl")}
    run_protocol(parse_config(config), store.root, progress=False)
    assert stages == {p: p.stat().st_mtime_ns for p in (store.root / "stages").rglob("*.jsonl")}


def test_early_stopping_stops_at_the_first_point_past_the_target(mini_config, tmp_path):
    config = only_finetuned(mini_config, eval_every="1 steps", stop_at="target")
    config["matched"] = {"target": 1.0}  # every point is at or below it
    store = run_protocol(parse_config(config), tmp_path / "run", progress=False)
    records = [json.loads(p.read_text()) for p in (store.root / "requests").glob("*/result.json")]
    assert records and all(r["steps"] == 1 and r["stopped"]["step"] == 1 for r in records)
    assert "matched.target" in records[0]["stopped"]["reason"]
    rows = read_results(store.root / RESULTS_FILE)
    stopped = [r for r in rows if r.metric == "stopped"]
    assert {r.method for r in stopped} == {"ga", "npo"} and all(r.step == 1 for r in stopped)


def test_the_report_shows_paths_and_the_matched_table(mini_config, tmp_path):
    from pulse.report import write_report
    from pulse.report.content import build_content

    config = only_finetuned(mini_config, eval_every="2 steps", eval_general=True)
    config["matched"] = {"target": 0.3}
    store = run_protocol(parse_config(config), tmp_path / "run", progress=False)
    content = build_content(store.root)
    assert not any(r.on_path for r in content.run.rows) and content.run.points
    table = next(t for t in content.tables if t.scenario == "finetuned-matched")
    assert table.header == ("method", "target reached at step", "stopped early")
    rows = {r.method: r for r in table.rows}
    assert rows["ga"].keys[2] == "no" and rows["ga"].value("matched_forget") == 0.3
    assert rows["ga"].value("end_retain") is not None
    assert any(f.name == "trajectory_finetuned.png" for f in content.figures)
    assert any("at matched forgetting" in s or "did not reach" in s for s in content.reading)
    files = write_report(store.root)
    assert (store.root / "figures" / "trajectory_finetuned.png") in files.figures
    assert "At matched forgetting (finetuned)" in files.markdown.read_text()


def test_a_sweep_expands_into_one_request_per_value():
    config = parse_config(
        {
            "methods": [
                {"method": "ga", "lr": [1e-4, 3e-4, 1e-3]},
                {"method": "npo", "label": "n", "params": {"beta": [0.1, 0.5]}, "epochs": 2},
            ]
        }
    )
    entries = {m.name: m for m in config.methods}
    assert list(entries) == [
        "ga[lr=0.0001]",
        "ga[lr=0.0003]",
        "ga[lr=0.001]",
        "n[beta=0.1]",
        "n[beta=0.5]",
    ]
    assert entries["ga[lr=0.0003]"].lr == 3e-4 and entries["n[beta=0.5]"].params == {"beta": 0.5}
    assert entries["n[beta=0.1]"].epochs == 2
    # What a run directory keeps (the expanded entries) reads back as the same config.
    assert parse_config(config.to_dict()).digest() == config.digest()
    with pytest.raises(ConfigError, match="at least one value"):
        parse_config({"methods": [{"method": "ga", "lr": []}]})
    with pytest.raises(ConfigError, match=r"methods\.1\.lr"):
        parse_config({"methods": [{"method": "ga", "lr": [1e-3, -1]}]})


def test_a_sweep_runs_resumes_and_the_report_keeps_one_value(mini_config, tmp_path):
    from pulse.report.content import build_content

    config = only_finetuned(mini_config, eval_every="1 steps")
    config["methods"] = [{"method": "ga", "max_steps": [1, 2]}]
    config["matched"] = {"target": 1.0}
    store = run_protocol(parse_config(config), tmp_path / "run", progress=False)
    stages = {p: p.stat().st_mtime_ns for p in (store.root / "stages").rglob("*.jsonl")}
    manifest = json.loads((store.root / "manifest.json").read_text())
    assert {"finetuned/ga[max_steps=1]", "finetuned/ga[max_steps=2]"} <= set(manifest["stages"])
    steps = sorted(
        json.loads(p.read_text())["steps"] for p in (store.root / "requests").glob("*/result.json")
    )
    assert steps == [1, 2]
    run_protocol(parse_config(config), store.root, progress=False)
    assert stages == {p: p.stat().st_mtime_ns for p in (store.root / "stages").rglob("*.jsonl")}
    content = build_content(store.root)
    kept = [s for s in content.reading if "swept values" in s]
    assert len(kept) == 1 and "the report keeps ga[max_steps=" in kept[0]
    table = next(t for t in content.tables if t.scenario == "finetuned-matched")
    assert sum(r.keys[0].endswith("(kept)") for r in table.rows) == 1


def test_sequential_against_one_batch_at_matched_forgetting(mini_config, tmp_path):
    from pulse.report.content import build_content

    config = only_finetuned(mini_config, eval_every="1 steps", max_steps=2)
    config["methods"] = [{"method": "ga"}]
    config["scenarios"]["sequential"] = {"enabled": True, "requests": 2}
    config["scenarios"]["scope"] = {"enabled": True, "scopes": ["llm", "projector+llm"]}
    config["matched"] = {"target": 0.5}
    store = run_protocol(parse_config(config), tmp_path / "run", progress=False)
    rows = read_results(store.root / RESULTS_FILE)
    placed = {
        (r.setting, r.request): r
        for r in rows
        if r.scenario == "sequential" and r.metric == "matched" and r.split == "forget"
    }
    assert set(placed) == {("sequential", 2), ("batch", 1)}
    # The chain's path: each request's points, its steps counted over the chain (two requests
    # of two steps), before only once; on the whole forget set.
    chain = [r for r in rows if r.on_path and r.setting == "sequential" and r.metric == "accuracy"]
    steps = {r.request: sorted({r.step for r in chain}) for r in chain}
    assert {r: sorted({x.step for x in chain if x.request == r}) for r in steps} == {
        1: [0, 1, 2],
        2: [3, 4],
    }
    forget = {r.step: r.n for r in chain if r.split == "forget" and r.modality == "all"}
    assert len(set(forget.values())) == 1  # the same people at every point
    records = [json.loads(p.read_text()) for p in (store.root / "requests").glob("*/result.json")]
    assert all(r["eval_steps"] == [1] for r in records)
    placed_step = placed[("sequential", 2)].step
    assert placed_step is None or 0 <= placed_step <= 4
    # The scope ablation's requests are evaluated along the way too, and placed at the target.
    scopes = {r.setting for r in rows if r.scenario == "scope" and r.metric == "matched"}
    assert scopes == {"llm", "projector+llm"}
    content = build_content(store.root)
    table = next(t for t in content.tables if t.scenario == "sequential-matched")
    labels = {r.keys[0] for r in table.rows}
    assert {"ga (sequential)", "ga (batch)", "before"} <= labels and len(table.method_rows) == 2
    assert any(t.scenario == "scope-matched" for t in content.tables)
    assert any(f.name == "trajectory_sequential.png" for f in content.figures)


@pytest.mark.slow  # two seeds' requests (the pooling itself is tested on hand-made paths)
def test_training_seeds_are_pooled_at_matched_forgetting(mini_config, tmp_path):
    config = only_finetuned(mini_config, eval_every="1 steps", max_steps=3)
    config["methods"] = [{"method": "ga"}]
    config["repeats"] = 2
    config["matched"] = {"target": 0.5}
    store = run_protocol(parse_config(config), tmp_path / "run", progress=False)
    rows = read_results(store.root / RESULTS_FILE)
    placed = {r.split: r for r in rows if r.metric == "matched"}
    # Each seed's own path at the target, from its point rows.
    own = []
    for repeat in (0, 1):
        path = sorted(
            (r.step, r.split, r.value)
            for r in rows
            if r.on_path and r.repeat == repeat and r.metric == "accuracy" and r.modality == "all"
        )
        steps = sorted({s for s, _, _ in path})
        forget = [next(v for s, p, v in path if s == x and p == "forget") for x in steps]
        retain = [next(v for s, p, v in path if s == x and p == "retain") for x in steps]
        where = crossing(forget, 0.5)
        if where is not None:
            own.append((at(steps, where), at(retain, where)))
    target = placed["forget"]
    if not own:
        assert target.step is None and "none of 2 training seeds" in target.detail
        return
    assert target.step == pytest.approx(sum(s for s, _ in own) / len(own))
    assert placed["retain"].value == pytest.approx(sum(v for _, v in own) / len(own))
    if len(own) == 1:
        assert "reached by 1 of 2 training seeds" in target.detail


def _point(method, step, forget, retain, repeat=None):
    from pulse.protocol.results import ResultRow

    common = dict(scenario="finetuned", kind="mcq", method=method, setting="", request=1)
    return [
        ResultRow(
            **common,
            requests=1,
            split=split,
            modality="all",
            metric="accuracy",
            value=value,
            repeat=repeat,
            step=step,
        )
        for split, value in (("forget", forget), ("retain", retain))
    ]


def test_the_figure_draws_every_seeds_path_beside_the_cells():
    from pulse.report.trajectory_figure import paths_of, trajectory_figures

    seeds = [
        row
        for repeat, end in ((0, 0.3), (1, 0.5))
        for step, forget in ((6, 0.7), (12, end))
        for row in _point("ga", step, forget, 0.6, repeat)
    ]
    pooled = [row for step, f in ((6, 0.7), (12, 0.4)) for row in _point("ga", step, f, 0.6)]
    # without pooled points the cell's path is the seeds' mean; both seeds are drawn
    cells, several = paths_of(seeds)
    assert [r.value for r in cells["ga", ""][12] if r.split == "forget"] == [pytest.approx(0.4)]
    assert all(r.pooled for rows in cells["ga", ""].values() for r in rows)
    assert [len(p) for p in several["ga", ""]] == [2, 2]
    assert {r.repeat for p in several["ga", ""] for rows in p.values() for r in rows} == {0, 1}
    # with pooled points the cell's path is theirs, never a seed's rows mixed in
    cells, several = paths_of(seeds + pooled)
    assert all(r.pooled for rows in cells["ga", ""].values() for r in rows)
    assert len(several["ga", ""]) == 2
    # one seed: no seed paths beside the cell's
    cells, several = paths_of(pooled)
    assert set(cells) == {("ga", "")} and not several
    (figure,) = trajectory_figures([], seeds + pooled, {"ga": "#1f77b4"})
    assert figure.name == "trajectory_finetuned.png" and figure.png[:4] == b"\x89PNG"


def test_eval_every_is_part_of_a_request_identity_only_with_stop_at():
    from pulse.models.settings import TrainSettings

    def identity(**kwargs):
        return TrainSettings(**kwargs).identity()

    # With early stopping, where training stops depends on which points are evaluated.
    assert identity(eval_every="1 steps", stop_at=0.3) != identity(
        eval_every="5 steps", stop_at=0.3
    )
    # Without it the points leave the weights alone: keys stay as they were.
    assert identity(eval_every="1 steps") == identity(eval_every="5 steps") == identity()
    assert "eval_every" not in identity(eval_every="1 steps")
