"""A run directory's files damaged after they were written: found on resume, said in one
line, the stage (request, evaluation) computed again; never a traceback, never fewer rows."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from pulse.errors import ConfigError, DataError
from pulse.methods.request import RequestResult, adapter_digests
from pulse.protocol.config import parse_config
from pulse.protocol.results import ResultRow, read_results
from pulse.protocol.store import MANIFEST, RunStore
from pulse.report.rundir import load_run

ROWS = [
    ResultRow("finetuned", "finetuned", "ga", "", 1, 1, "forget", "all", "accuracy", i / 12)
    for i in range(12)
]


@pytest.fixture(scope="module")
def config():
    return parse_config({"seed": 3})


def _finished(tmp_path, config) -> RunStore:
    store = RunStore.open(tmp_path / "run", config)
    store.run_stage("finetuned/ga", lambda: ROWS)
    return store


def _resume(store: RunStore, config) -> tuple[RunStore, list[ResultRow]]:
    again = RunStore.open(store.root, config)
    calls = []
    rows = again.run_stage("finetuned/ga", lambda: calls.append(1) or ROWS)
    return again, rows if not calls else [*rows, "recomputed"]


def _cut_at_line_end(path, keep: int) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:keep]), encoding="utf-8")


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda p: _cut_at_line_end(p, 6), "holds 6 of the 12 rows"),
        (lambda p: p.write_bytes(p.read_bytes()[:-40]), "cut in the middle of row 12"),
        (lambda p: p.unlink(), "missing"),
        (lambda p: p.write_bytes(p.read_bytes().replace(b"0.5", b"0.6")), "SHA-256"),
        (lambda p: p.write_bytes(b"\xff\xfe" + p.read_bytes()), "SHA-256"),
    ],
    ids=["cut-at-line-end", "cut-mid-line", "missing", "edited", "not-utf8"],
)
def test_a_damaged_stage_file_runs_the_stage_again(tmp_path, config, capsys, damage, said):
    store = _finished(tmp_path, config)
    path = store.rows_path("finetuned/ga")
    damage(path)
    capsys.readouterr()
    _, rows = _resume(store, config)
    err = capsys.readouterr().err
    assert rows[-1] == "recomputed" and rows[:-1] == ROWS
    assert str(path) in err and said in err and "runs again" in err
    assert len([line for line in err.splitlines() if "runs again" in line]) == 1
    assert read_results(store.root / "results.jsonl") == ROWS
    assert load_run(store.root).problems == []


def test_an_intact_stage_is_read_back(tmp_path, config, capsys):
    store = _finished(tmp_path, config)
    _, rows = _resume(store, config)
    assert rows == ROWS and capsys.readouterr().err == ""


def test_a_stage_of_an_older_version_without_checksum_is_read_when_whole(tmp_path, config):
    store = _finished(tmp_path, config)
    manifest = json.loads((store.root / MANIFEST).read_text())
    for key in ("rows", "sha256"):
        del manifest["stages"]["finetuned/ga"][key]
    (store.root / MANIFEST).write_text(json.dumps(manifest))
    assert _resume(store, config)[1] == ROWS
    path = store.rows_path("finetuned/ga")
    path.write_bytes(path.read_bytes()[:-40])
    assert _resume(store, config)[1][-1] == "recomputed"


def test_report_names_a_damaged_stage_file_and_a_stale_results_file(tmp_path, config):
    store = _finished(tmp_path, config)
    _cut_at_line_end(store.rows_path("finetuned/ga"), 6)
    _cut_at_line_end(store.root / "results.jsonl", 10)
    problems = load_run(store.root).problems
    assert any(p.startswith("stages/finetuned__ga.jsonl: holds 6 of the 12") for p in problems)
    assert any(
        p.startswith("results.jsonl: holds 10 rows, the finished stages 12") for p in problems
    )


def test_a_stale_results_file_is_rebuilt_on_resume(tmp_path, config):
    store = _finished(tmp_path, config)
    _cut_at_line_end(store.root / "results.jsonl", 3)
    RunStore.open(store.root, config)
    assert read_results(store.root / "results.jsonl") == ROWS


@pytest.mark.parametrize(
    "content", [b'{"config_hash": "ab', b"", b"[]", b'{"stages": 3}', b"\xff{}"]
)
def test_a_damaged_manifest_with_the_same_config_starts_afresh(tmp_path, config, capsys, content):
    store = _finished(tmp_path, config)
    (store.root / MANIFEST).write_bytes(content)
    again, rows = _resume(store, config)
    assert rows[-1] == "recomputed"
    assert f"{store.root / MANIFEST}" in capsys.readouterr().err
    assert again.manifest["stages"]["finetuned/ga"]["status"] == "done"


def test_a_damaged_manifest_beside_another_config_is_refused(tmp_path, config):
    store = _finished(tmp_path, config)
    (store.root / MANIFEST).write_text('{"stages": {', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"manifest.json: not valid JSON.*use another --out"):
        RunStore.open(store.root, parse_config({"seed": 4}))


@pytest.mark.parametrize("content", [b'{"mcq": [', b"\xff\xfe", b'{"mcq": 5}', b"[1, 2]"], ids=str)
def test_a_damaged_evaluation_is_computed_again(tmp_path, config, capsys, content):
    from pulse.protocol.measurement import Measurement

    store = RunStore.open(tmp_path / "run", config)
    store.write_json({"mcq": []}, "evals", "k.json")
    assert store.read_json("evals", "k.json", parse=Measurement.from_dict) is not None
    (store.root / "evals" / "k.json").write_bytes(content)
    assert store.read_json("evals", "k.json", parse=Measurement.from_dict) is None
    err = capsys.readouterr().err
    assert "evals/k.json" in err and "computed again" in err and "Traceback" not in err


def _finished_request(out, status="ok"):
    (out / "adapter").mkdir(parents=True)
    (out / "adapter" / "adapter_config.json").write_text("{}")
    (out / "adapter" / "adapter_model.safetensors").write_bytes(b"weights")
    record = {
        "status": status,
        "method": "ga",
        "applies_on": {"model": "/m", "merged": []},
        "adapter_sha256": adapter_digests(out / "adapter"),
    }
    (out / "result.json").write_text(json.dumps(record))


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda o: (o / "result.json").write_text('{"status": "o'), "not valid JSON"),
        (lambda o: (o / "result.json").write_bytes(b"\xff"), "not UTF-8"),
        (lambda o: (o / "result.json").write_text('{"status": 1}'), "field 'status'"),
        (
            lambda o: (o / "result.json").write_text('{"status": "ok", "method": "ga"}'),
            "applies_on",
        ),
        (lambda o: (o / "adapter" / "adapter_model.safetensors").write_bytes(b"x"), "SHA-256"),
        (lambda o: (o / "adapter" / "adapter_model.safetensors").unlink(), "is missing"),
        (lambda o: (o / "adapter" / "adapter_config.json").unlink(), "no adapter_config.json"),
    ],
    ids=[
        "truncated",
        "not-utf8",
        "wrong-type",
        "no-applies-on",
        "weights",
        "no-weights",
        "no-config",
    ],
)
def test_a_damaged_request_runs_again(tmp_path, capsys, damage, said):
    out = tmp_path / "requests" / "k"
    _finished_request(out)
    assert RequestResult.finished(out).ok
    damage(out)
    assert RequestResult.finished(out) is None
    err = capsys.readouterr().err
    assert said in err and "runs again" in err and str(out) in err
    with pytest.raises(DataError):
        RequestResult.read(out)


def test_a_run_with_damaged_files_resumes_to_the_same_rows(mini_config, tmp_path, capsys):
    """Each file a finished run wrote, damaged, then the run resumed: the same rows."""
    from pulse.protocol.runner import run_protocol

    only = {**mini_config, "methods": [{"method": "ga"}]}
    only["scenarios"] = {
        name: {"enabled": name == "finetuned"} for name in mini_config["scenarios"]
    }
    only["scenarios"]["finetuned"] |= {"people": 4}
    store = run_protocol(parse_config(only), tmp_path / "run", progress=False)
    results = store.root / "results.jsonl"
    rows = read_results(results)
    request = next((store.root / "requests").iterdir())
    evaluation = next((store.root / "evals").iterdir())
    _cut_at_line_end(store.rows_path("finetuned/ga"), 2)
    (request / "result.json").write_text('{"status": "ok", "met', encoding="utf-8")
    evaluation.write_bytes(evaluation.read_bytes()[:100])
    capsys.readouterr()
    run_protocol(parse_config(only), store.root, progress=False)
    err = capsys.readouterr().err
    assert "finetuned__ga.jsonl: holds 2 of the" in err and "result.json: not valid JSON" in err
    assert f"{evaluation}: not valid JSON" in err and "Traceback" not in err
    assert read_results(results) == rows
    (store.root / MANIFEST).write_text('{"config_hash": ', encoding="utf-8")
    run_protocol(parse_config(only), store.root, progress=False)
    assert read_results(results) == rows
    assert load_run(store.root).problems == []


@pytest.mark.slow
def test_a_run_killed_at_random_moments_resumes_to_the_same_rows(mini_config, tmp_path):
    """``pulse run`` killed with SIGKILL at random moments (model loads, training, evaluation,
    between stages) and once right after a request's training checkpoint, re-run until it
    finishes: the rows of an uninterrupted run, the killed request resumed from its checkpoint
    (not from its first step), and no checkpoint left behind."""
    import random
    import signal
    import subprocess
    import sys
    import time

    import yaml

    config = {**mini_config, "methods": [{"method": "ga"}, {"method": "npo"}]}
    config["train"] = {"max_steps": 12, "batch_size": 4, "checkpoint_every": "3 steps"}
    config["scenarios"] = {
        name: {"enabled": name == "finetuned"} for name in mini_config["scenarios"]
    }
    config["scenarios"]["finetuned"] |= {"people": 4}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")

    def run(out, kill_after=None, at_checkpoint=False):
        command = [sys.executable, "-m", "pulse.cli", "run", str(path), "--out", str(out)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if at_checkpoint:  # inside a request's training, once its first checkpoint is sealed
            while process.poll() is None:
                if any(out.glob("requests/*/checkpoints/checkpoint-*/pulse_checkpoint.json")):
                    process.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.01)
        if kill_after is not None:
            try:
                process.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
        _, err = process.communicate(timeout=600)
        assert b"Traceback" not in err, err.decode()[-2000:]
        return process.returncode

    started = time.perf_counter()
    assert run(tmp_path / "whole") == 0
    whole = time.perf_counter() - started
    # Each attempt resumes the one before and is killed a random part of a whole run's time
    # later: loading, training, evaluating or writing, wherever that falls.
    assert run(tmp_path / "killed", at_checkpoint=True) != 0
    rng, kills = random.Random(19), 0
    for _ in range(6):
        if run(tmp_path / "killed", rng.uniform(0.2, 0.6) * whole) == 0:
            break
        kills += 1
    assert kills >= 1  # at least one moment fell inside the run
    assert run(tmp_path / "killed") == 0
    expected = read_results(tmp_path / "whole" / "results.jsonl")
    assert read_results(tmp_path / "killed" / "results.jsonl") == expected
    assert load_run(tmp_path / "killed").problems == []
    requests = list((tmp_path / "killed" / "requests").iterdir())
    assert not [r for r in requests if (r / "checkpoints").exists()]
    resumed = [json.loads((r / "result.json").read_text())["resumed_from_step"] for r in requests]
    assert any(step is not None for step in resumed), resumed


def test_a_run_directory_moved_elsewhere_keeps_its_requests_and_evaluations(
    mini_config, tmp_path, no_new_work
):
    """Cache keys and a request's record name what lies inside the run directory relative to
    it: moved whole, a run (sequential chains included) trains and evaluates nothing again."""
    import shutil

    from pulse.methods.request import load_unlearned
    from pulse.protocol.runner import run_protocol

    only = {**mini_config, "methods": [{"method": "ga"}]}
    only["scenarios"] = {
        name: {**spec, "enabled": name == "sequential"}
        for name, spec in mini_config["scenarios"].items()
    }
    first = run_protocol(parse_config(only), tmp_path / "first", progress=False)
    rows = read_results(first.root / "results.jsonl")
    moved = tmp_path / "moved"
    shutil.copytree(first.root, moved)
    shutil.rmtree(first.root)  # nothing may still be read from where it was
    for stage in (moved / "stages").iterdir():
        stage.unlink()  # every row computed again, from the requests and evaluations kept

    with no_new_work():
        run_protocol(parse_config(only), moved, progress=False)
    assert read_results(moved / "results.jsonl") == rows
    # the second request of the chain applies on the first, found in its new place
    second = max(
        (moved / "requests").iterdir(),
        key=lambda d: len(json.loads((d / "result.json").read_text())["applies_on"]["merged"]),
    )
    model, _ = load_unlearned(second)
    assert model is not None


def test_a_cell_with_a_number_that_is_not_finite_is_sealed_as_failed_and_stays_readable(
    tmp_path, config, capsys
):
    other = ResultRow("finetuned", "finetuned", "npo", "", 1, 1, "forget", "all", "accuracy", 0.5)
    bad = ResultRow("finetuned", "finetuned", "ga", "", 1, 1, "forget", "all", "truth_ratio", 1.0)
    rows = [*ROWS, replace(bad, value=float("inf")), other]
    store = RunStore.open(tmp_path / "run", config)
    sealed = store.run_stage("finetuned/ga", lambda: rows)
    said = capsys.readouterr().err
    assert "stage finetuned/ga: truth_ratio on forget/all has value inf" in said
    # The cell with the infinite number is one failed row naming it; the other cell is kept.
    assert [(r.method, r.status) for r in sealed] == [("ga", "failed"), ("npo", "ok")]
    assert "truth_ratio on forget/all" in sealed[0].detail
    assert store.stage_status("finetuned/ga") == "failed"
    # The run directory stays readable: it opens again, its files read back.
    assert read_results(store.root / "results.jsonl") == sorted(sealed, key=lambda r: r.method)
    again = RunStore.open(store.root, config)
    assert read_results(again.rows_path("finetuned/ga")) == sealed
    # One training seed's cell keeps its repeat.
    seed_rows = [replace(r, repeat=1) for r in (ROWS[0], replace(bad, low=float("nan")))]
    (failed,) = again.run_stage("finetuned/ga/repeat-1", lambda: seed_rows)
    assert (failed.status, failed.repeat) == ("failed", 1) and "has low nan" in failed.detail


def test_new_dir_resumes_the_directory_that_holds_this_config(tmp_path, config):
    other = parse_config({"seed": 4})
    first = _finished(tmp_path, other)  # RUN holds another config
    fresh = RunStore.open(first.root, config, new_dir=True)
    assert fresh.root == tmp_path / "run-2"
    fresh.run_stage("finetuned/ga", lambda: ROWS)
    # The same command again (after a kill, say) resumes RUN-2 instead of starting RUN-3.
    again, rows = _resume(RunStore.open(first.root, config, new_dir=True), config)
    assert again.root == tmp_path / "run-2" and rows == ROWS
    assert not (tmp_path / "run-3").exists()
    # A third config takes the first free directory.
    assert RunStore.open(first.root, parse_config({"seed": 5}), new_dir=True).root == (
        tmp_path / "run-3"
    )


@pytest.mark.parametrize(("status", "again"), [("failed", True), ("diverged", False)])
def test_a_failed_stage_runs_again_on_resume_a_diverged_one_stays(
    tmp_path, config, capsys, status, again
):
    from pulse.protocol.results import status_row

    ended = [status_row("finetuned", "finetuned", "ga", "", 1, 1, status, "CUDA out of memory")]
    later = [replace(ROWS[0], metric="contrast", versus="npo")]
    elsewhere = [replace(ROWS[0], scenario="pretrained", kind="pretrained")]
    store = RunStore.open(tmp_path / "run", config)
    store.run_stage("finetuned/ga", lambda: ended)
    store.run_stage("finetuned/contrasts", lambda: later)
    store.run_stage("pretrained/ga", lambda: elsewhere)
    # Within the run that sealed it the stage is done: it is not computed twice.
    assert store.is_done("finetuned/ga")
    resumed, rows = _resume(store, config)
    said = capsys.readouterr().err
    # The stages after it in its scenario read it: they run again too; other scenarios do not.
    assert resumed.is_done("finetuned/contrasts") is not again
    assert resumed.is_done("pretrained/ga")
    if again:
        assert rows == [*ROWS, "recomputed"]
        assert "that failed run again: finetuned/ga (and the 1 after them" in said
        assert resumed.stage_status("finetuned/ga") == "done"
    else:
        assert rows == ended and "run again" not in said
