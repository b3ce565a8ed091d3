"""A whole `pulse run` under `torchrun` with two CPU processes (gloo): every request trains
over both, every evaluation is split over them, rank 0 alone writes the run directory. Its
results are those of one process to float rounding, also after a process was killed mid-stage
and the run resumed.

Three runs of a small protocol (two of them with two processes): about 3 minutes on a busy
2-core machine, hence slow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from pulse.protocol.config import parse_config
from pulse.protocol.runner import run_protocol

STAGE = "finetuned/ga_kl"  # the process is killed while this stage trains


def _config(mini_config):
    mini_config["methods"] = [{"method": "ga_kl"}, {"method": "npo"}]
    # 2 forget people x 4 pairs: whole batches of 4 (a partial one would differ, scaling.md)
    mini_config["train"].update(pairs_per_id=4)
    mini_config["eval"]["general_questions"] = 4
    mini_config["scenarios"] = {
        "finetuned": {"people": 4},
        **{s: {"enabled": False} for s in ("pretrained", "sequential", "scope", "pebench")},
    }
    return mini_config


def _launch(config: Path, out: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "-m", "pulse.cli", "run", str(config), "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def _status(out: Path, stage: str) -> str | None:
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest["stages"].get(stage, {}).get("status")


def _rank(launcher: subprocess.Popen, rank: str) -> psutil.Process | None:
    for child in psutil.Process(launcher.pid).children(recursive=True):
        try:
            if child.environ().get("RANK") == rank:
                return child
        except psutil.Error:
            continue
    return None


def _results(run: Path) -> dict[tuple, dict]:
    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    # With the step: the finetuned requests' points (eval_every, evaluated by both processes).
    keys = ("scenario", "method", "setting", "request", "split", "modality", "metric", "versus")
    keys += ("step",)
    return {tuple(r.get(k) for k in keys): r for r in rows}


@pytest.mark.slow
def test_two_processes_give_the_results_of_one_and_resume_after_a_crash(mini_config, tmp_path):
    config = _config(mini_config)
    alone = run_protocol(parse_config(config), tmp_path / "one", progress=False).root
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "two"

    # Rank 1 dies while the stage trains: the launcher stops rank 0, nothing of it is sealed.
    launcher = _launch(path, out)
    deadline = time.monotonic() + 240
    while _status(out, STAGE) != "running" and launcher.poll() is None:
        assert time.monotonic() < deadline, "the stage never started"
        time.sleep(0.1)
    victim = _rank(launcher, "1")
    assert victim is not None and _status(out, STAGE) == "running"
    victim.send_signal(signal.SIGKILL)
    log = launcher.communicate(timeout=120)[0]
    assert launcher.returncode != 0, log[-2000:]
    assert _status(out, "finetuned/before") == "done"
    assert _status(out, STAGE) == "running"  # not sealed: it runs again

    resumed = _launch(path, out)
    log = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, log[-3000:]
    assert "[finetuned/before]" not in log and f"[{STAGE}]" in log  # kept / run again
    assert log.count("report:") == 1  # rank 0 alone reports

    one, two = _results(alone), _results(out)
    assert one.keys() == two.keys() and len(one) > 50
    for key, row in one.items():
        for field in ("value", "n", "status", "low", "high", "change_low", "change_high"):
            expected = row.get(field)
            got = two[key].get(field)
            if isinstance(expected, float):
                assert got == pytest.approx(expected, abs=1e-4), (key, field)
            else:
                assert got == expected, (key, field)
    record = json.loads(next((out / "requests").glob("*/result.json")).read_text())
    assert record["processes"] == 2
