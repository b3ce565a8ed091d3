"""Data parallelism comes from the libraries: `torchrun` with two CPU processes (gloo) runs one
request as one data-parallel training, and rank 0 alone writes its result."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow  # the heaviest of its kind (2-core suite time): pytest -m slow
def test_two_processes_run_one_request(small_world, tiny_models, tmp_path):
    models = tiny_models
    out = tmp_path / "request"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "-m", "pulse.cli", "unlearn",
        "--model", str(models / "finetuned"), "--data", str(small_world / "mllmu"),
        "--forget", "forget_50", "--retain", "retain_50", "--method", "ga_kl",
        "--max-steps", "2", "--batch-size", "2", "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((out / "result.json").read_text())
    assert record["status"] == "ok" and record["processes"] == 2 and record["steps"] == 2
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert done.stdout.count("ga_kl: 2 steps") == 1  # one report, from rank 0
