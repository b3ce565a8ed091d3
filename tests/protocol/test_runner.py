"""Miniature runs of every scenario on the tiny world models: rows, resume, failures."""

from __future__ import annotations

import json
from dataclasses import astuple

import pytest

from pulse.errors import ConfigError
from pulse.eval.intervals import wilson
from pulse.protocol.config import parse_config
from pulse.protocol.results import RESULTS_FILE, read_results
from pulse.protocol.runner import Interrupt, run_protocol


def measured(rows):
    return {
        r.key: (r.value, r.n, r.status, r.low, r.high, r.change_low, r.change_high) for r in rows
    }


def test_every_scenario_end_to_end(mini_config, tmp_path):
    mini_config["train"]["pairs_per_id"] = 3
    store = run_protocol(parse_config(mini_config), tmp_path / "run", progress=False)
    rows = read_results(store.root / RESULTS_FILE)
    cells = {r.cell for r in rows}
    for scenario in ("finetuned", "pretrained", "scope"):
        assert (scenario, "before", "", 0) in {c for c in cells if c[0] == scenario}
    # finetuned: 8 people, half forgotten; both modalities, the pooled figure, general.
    ft = {(r.split, r.modality, r.metric): r for r in rows if r.cell == ("finetuned", "ga", "", 1)}
    assert ft[("forget", "multimodal", "accuracy")].n == 4 * 5
    assert ft[("forget", "all", "accuracy")].n == 4 * 10
    assert ft[("retain", "text", "accuracy")].n == 4 * 5
    assert ft[("general", "all", "circular")].n == 6
    assert ft[("forget", "text", "chance")].value == 0.25  # four options per question
    # 95 % intervals: over the 4 forgotten people (MCQ), over the questions (general).
    for key in (("forget", "multimodal", "accuracy"), ("general", "all", "circular")):
        row = ft[key]
        assert 0 <= row.low <= row.value <= row.high <= 1, key
    general = ft[("general", "all", "circular")]
    assert (general.low, general.high) == astuple(wilson(general.value * general.n, general.n))
    assert ft[("forget", "text", "chance")].low is None
    # The change against before has a paired interval around it; the before row has none.
    first = {
        (r.split, r.modality, r.metric): r for r in rows if r.cell == ("finetuned", "before", "", 0)
    }
    for key in (("forget", "multimodal", "accuracy"), ("general", "all", "circular")):
        change = ft[key].value - first[key].value
        assert ft[key].change_low - 1e-9 <= change <= ft[key].change_high + 1e-9, key
        assert first[key].change_low is None
    # Every pair of methods compared on the same people and questions: ga minus npo.
    npo = {
        (r.split, r.modality, r.metric): r for r in rows if r.cell == ("finetuned", "npo", "", 1)
    }
    contrasts = {
        (r.split, r.modality): r
        for r in rows
        if r.cell == ("finetuned", "ga", "", 1) and r.metric == "contrast"
    }
    assert {r.versus for r in contrasts.values()} == {"npo"}
    for split, modality in (("forget", "text"), ("retain", "all")):
        row, metric = contrasts[(split, modality)], (split, modality, "accuracy")
        assert row.value == pytest.approx(ft[metric].value - npo[metric].value)
        assert row.low - 1e-9 <= row.value <= row.high + 1e-9
    assert contrasts[("general", "all")].value == pytest.approx(
        ft[("general", "all", "circular")].value - npo[("general", "all", "circular")].value
    )
    assert any(r.metric == "contrast" and r.scenario == "pretrained" for r in rows)
    # The sequential chains' ends are compared too (request K = 2, ga minus npo).
    ends = [
        r for r in rows if r.scenario == "sequential" and r.metric == "contrast" and r.request == 2
    ]
    assert ends and {(r.method, r.setting, r.versus) for r in ends} == {("ga", "sequential", "npo")}
    # The scope ablation compares one method's scopes: llm minus projector+llm for ga.
    scoped = {
        (r.setting, r.split, r.modality, r.metric): r
        for r in rows
        if r.scenario == "scope" and r.method == "ga"
    }
    llm_vs = scoped[("llm", "forget", "all", "contrast")]
    assert llm_vs.versus == "projector+llm"
    assert llm_vs.value == pytest.approx(
        scoped[("llm", "forget", "all", "accuracy")].value
        - scoped[("projector+llm", "forget", "all", "accuracy")].value
    )
    # sequential: K = 2 requests per method plus the batch row; the bookkeeping in the rows.
    seq = {(r.method, r.setting, r.request, r.split) for r in rows if r.scenario == "sequential"}
    assert ("npo", "sequential", 1, "pending") in seq
    assert ("npo", "sequential", 2, "pending") not in seq
    assert ("npo", "sequential", 2, "forgotten") in seq and ("npo", "batch", 1, "forget") in seq
    sizes = {
        (r.request, r.split): r.n
        for r in rows
        if r.scenario == "sequential"
        and r.method == "ga"
        and r.modality == "all"
        and r.metric == "accuracy"
    }
    assert sizes[(1, "current")] == sizes[(1, "forgotten")] == 2 * 10
    assert sizes[(2, "forgotten")] == sizes[(2, "forget")] == 4 * 10
    # The sequential-vs-batch gap: request K minus the batch, in request K's cell, with the
    # paired interval of the difference.
    seq_rows = {
        (r.setting, r.request, r.split, r.modality, r.metric): r
        for r in rows
        if r.scenario == "sequential" and r.method == "ga"
    }
    for split, modality, metric in (("forget", "text", "accuracy"), ("general", "all", "circular")):
        gap = seq_rows[("sequential", 2, split, modality, "gap")]
        last = seq_rows[("sequential", 2, split, modality, metric)]
        batch = seq_rows[("batch", 1, split, modality, metric)]
        assert gap.value == pytest.approx(last.value - batch.value)
        assert gap.low - 1e-9 <= gap.value <= gap.high + 1e-9
    # scope: one row set per scope label; the request of scope "llm" is the finetuned one.
    assert {r.setting for r in rows if r.scenario == "scope" and r.method != "before"} == {
        "llm",
        "projector+llm",
    }
    manifest = json.loads((store.root / "manifest.json").read_text())
    assert manifest["finished"] and all(s["status"] == "done" for s in manifest["stages"].values())
    trained, shared = manifest["stages"]["finetuned/ga"], manifest["stages"]["sequential/batch/ga"]
    assert trained["train_seconds"] > 0 and trained["eval_seconds"] > 0
    assert not trained["reused_request"]
    assert shared["reused_request"] and shared["train_seconds"] == 0.0
    assert shared["request"] == trained["request"]
    # Each person's training pairs were capped at 3 (the world's profiles have more).
    result = json.loads((store.root / "requests" / trained["request"] / "result.json").read_text())
    assert result["n_forget_examples"] == 4 * 3 and result["n_retain_examples"] == 4 * 3
    # pretrained: the probe chose 6 known celebrities, 2 forgotten, persisted as ID lists.
    forget = (store.root / "splits/pretrained/forget.txt").read_text().split()
    retain = (store.root / "splits/pretrained/retain.txt").read_text().split()
    assert len(forget) == 2 and len(retain) == 4
    # Identical requests ran once: finetuned ga == sequential batch ga == scope llm ga.
    # Two methods: finetuned, pretrained, 2 sequential each; scope (ga only): projector+llm.
    requests = list((store.root / "requests").iterdir())
    assert len(requests) == 2 * (1 + 1 + 2) + 1

    # Resume after a crash: a run stopped after 5 new stages, then re-run, gives the same rows.
    stopped = tmp_path / "stopped"
    with pytest.raises(Interrupt):
        run_protocol(parse_config(mini_config), stopped, progress=False, stop_after=5)
    partial = json.loads((stopped / "manifest.json").read_text())
    assert not partial["finished"] and len(partial["stages"]) == 5
    resumed = run_protocol(parse_config(mini_config), stopped, progress=False)
    assert measured(read_results(resumed.root / RESULTS_FILE)) == measured(rows)

    # A re-run of a finished run computes nothing: it reads every stage back.
    before = {p.name: p.stat().st_mtime_ns for p in (store.root / "stages").iterdir()}
    run_protocol(parse_config(mini_config), store.root, progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in (store.root / "stages").iterdir()}
    assert before == after


def test_changed_config_is_refused_or_gets_a_new_directory(mini_config, tmp_path):
    only = {**mini_config, "methods": [{"method": "ga"}]}
    only["scenarios"] = {
        name: {"enabled": name == "finetuned"} for name in mini_config["scenarios"]
    }
    only["scenarios"]["finetuned"] |= {"people": 4}
    run_protocol(parse_config(only), tmp_path / "run", progress=False)
    changed = {**only, "train": {"max_steps": 3, "batch_size": 4}}
    with pytest.raises(ConfigError, match=r"different config \(changed: train.max_steps\)"):
        run_protocol(parse_config(changed), tmp_path / "run", progress=False)
    fresh = run_protocol(parse_config(changed), tmp_path / "run", new_dir=True, progress=False)
    assert fresh.root == tmp_path / "run-2"


def test_a_diverging_method_is_recorded_and_the_run_goes_on(mini_config, tmp_path):
    config = {**mini_config}
    config["methods"] = [
        {"method": "ga", "label": "ga_blowup", "loss_bound": 1e-6},
        {"method": "npo"},
    ]
    config["scenarios"] = {
        "finetuned": {"people": 4},
        "pretrained": {"enabled": False},
        "sequential": {"requests": 2, "batch": False},
        "scope": {"enabled": False},
    }
    store = run_protocol(parse_config(config), tmp_path / "run", progress=False)
    rows = read_results(store.root / RESULTS_FILE)
    status = {r.cell: r for r in rows if r.metric == "status"}
    blown = status[("finetuned", "ga_blowup", "", 1)]
    assert blown.status == "diverged" and "diverged at step 1" in blown.detail
    assert status[("sequential", "ga_blowup", "sequential", 1)].status == "diverged"
    later = status[("sequential", "ga_blowup", "sequential", 2)]
    assert later.status == "failed" and "request 1 did not finish" in later.detail
    npo = [r for r in rows if r.method == "npo"]
    assert npo and all(r.status == "ok" and r.value is not None for r in npo)
    manifest = json.loads((store.root / "manifest.json").read_text())
    assert manifest["stages"]["finetuned/ga_blowup"]["status"] == "diverged"
    assert manifest["finished"]


def test_a_method_that_raises_is_recorded_as_failed(mini_config, tmp_path, monkeypatch):
    import pulse.methods.request as request_module

    real = request_module.run_request

    def flaky(model_dir, forget_pairs, retain_pairs, method, *args, **kwargs):
        if method == "npo":
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(model_dir, forget_pairs, retain_pairs, method, *args, **kwargs)

    monkeypatch.setattr(request_module, "run_request", flaky)
    config = {**mini_config, "scenarios": {"finetuned": {"people": 4}}}
    config["scenarios"] |= {
        k: {"enabled": False} for k in ("pretrained", "sequential", "scope", "pebench")
    }
    store = run_protocol(parse_config(config), tmp_path / "run", progress=False)
    rows = read_results(store.root / RESULTS_FILE)
    failed = [r for r in rows if r.method == "npo"]
    assert len(failed) == 1 and failed[0].status == "failed"
    assert failed[0].detail == "RuntimeError: CUDA out of memory (simulated)"
    assert any(r.method == "ga" and r.value is not None for r in rows)
    errors = list((store.root / "requests").glob("*/error.txt"))
    assert len(errors) == 1 and "simulated" in errors[0].read_text()


def test_pebench_person_and_event_targets(mini_config, tmp_path):
    config = {**mini_config, "methods": [{"method": "ga"}]}
    config["scenarios"] = {
        "finetuned": {"enabled": False},
        "pretrained": {"enabled": False},
        "sequential": {"enabled": False},
        "scope": {"enabled": False},
        "pebench": {"enabled": True, "persons": 1, "events": 1, "finetune_epochs": 0.5},
    }
    config["eval"] = {"max_new_tokens": 6}
    store = run_protocol(parse_config(config), tmp_path / "run", progress=False)
    rows = read_results(store.root / RESULTS_FILE)
    got = {(r.method, r.setting, r.split) for r in rows}
    for setting in ("person", "event"):
        for split in ("efficacy", "generality", "retain", "scope"):
            assert ("before", setting, split) in got and ("ga", setting, split) in got
    assert all(0.0 <= r.value <= 1.0 for r in rows)
    # Each score has its 95 % interval, and the change against before its paired one.
    by_key = {(r.method, r.setting, r.split): r for r in rows}
    for setting in ("person", "event"):
        for split in ("efficacy", "retain"):
            row, first = by_key[("ga", setting, split)], by_key[("before", setting, split)]
            assert row.low - 1e-9 <= row.value <= row.high + 1e-9, (setting, split)
            change = row.value - first.value
            assert row.change_low - 1e-9 <= change <= row.change_high + 1e-9, (setting, split)
    assert (store.root / "models/pebench/config.json").is_file()


def test_missing_inputs_fail_before_training(mini_config, tmp_path):
    broken = {**mini_config, "data": {**mini_config["data"], "mmbench": str(tmp_path / "x.tsv")}}
    with pytest.raises(ConfigError, match=r"data.mmbench: .*x.tsv is not an existing file"):
        run_protocol(parse_config(broken), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # nothing written that looks like a run
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    no_model = {**mini_config, "models": {**mini_config["models"], "finetuned": str(empty)}}
    typo = {**mini_config, "scenarios": {"finetuned": {"forget": "forget_nope", "retain": "f001"}}}
    with pytest.raises(ConfigError, match=r"finetuned.forget: .*no config 'forget_nope' here"):
        run_protocol(parse_config(typo), tmp_path / "typo", progress=False)
    assert not (tmp_path / "typo" / "splits").exists()  # no split saved from a typo
    with pytest.raises(ConfigError, match=r"models.finetuned: .*no config.json"):
        run_protocol(parse_config(no_model), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_sequential_chain_of_weight_edits_hands_each_edit_to_the_next(mini_config, tmp_path):
    """MANU leaves an edit, not an adapter: request 2 is computed on request 1's edit."""
    config = {**mini_config, "methods": [{"method": "manu"}]}
    config["scenarios"] = {
        "finetuned": {"people": 4, "enabled": False},
        "pretrained": {"enabled": False},
        "sequential": {"requests": 2, "batch": False},
        "scope": {"enabled": False},
    }
    store = run_protocol(parse_config(config), tmp_path / "run", progress=False)
    stages = store.manifest["stages"]
    first, second = (stages[f"sequential/sequential/manu/{k}"]["request"] for k in (1, 2))
    record = json.loads((store.root / "requests" / second / "result.json").read_text())
    assert record["edit"] == "edit" and record["steps"] == 0
    assert record["applies_on"]["merged"] == [
        str((store.root / "requests" / first / "edit").resolve())
    ]
    rows = read_results(store.root / RESULTS_FILE)
    assert {r.request for r in rows if r.method == "manu" and r.status == "ok"} == {1, 2}


def test_sequential_merge_policy_stacks_the_earlier_adapters(mini_config, tmp_path):
    config = {**mini_config, "methods": [{"method": "ga"}]}
    config["train"] = {**mini_config["train"], "group_by_length": True}
    config["scenarios"] = {
        "finetuned": {"people": 4, "enabled": False},
        "pretrained": {"enabled": False},
        "sequential": {"requests": 2, "adapters": "merge", "batch": False},
        "scope": {"enabled": False},
    }
    store = run_protocol(parse_config(config), tmp_path / "run", progress=False)
    second = store.manifest["stages"]["sequential/sequential/ga/2"]
    first = store.manifest["stages"]["sequential/sequential/ga/1"]
    record = json.loads((store.root / "requests" / second["request"] / "result.json").read_text())
    assert record["reference"] == "previous"
    assert record["applies_on"]["merged"] == [
        str((store.root / "requests" / first["request"] / "adapter").resolve())
    ]
    rows = read_results(store.root / RESULTS_FILE)
    assert {r.request for r in rows if r.method == "ga"} == {1, 2}


def test_a_person_both_to_forget_and_to_retain_is_refused(mini_config, tmp_path):
    split = {"forget": "f001,f002", "retain": "f002,f003"}
    both = {**mini_config, "scenarios": {**mini_config["scenarios"], "finetuned": split}}
    with pytest.raises(
        ConfigError,
        match=r"IDs both in scenarios.finetuned.forget and scenarios.finetuned.retain: f002$",
    ):
        run_protocol(parse_config(both), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
