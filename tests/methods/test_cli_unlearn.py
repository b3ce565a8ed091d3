"""`pulse unlearn` and `pulse methods` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pulse.world.build import build_world


def pulse(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pulse.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def mllmu(tmp_path_factory):
    world = tmp_path_factory.mktemp("world") / "w"
    build_world(world, seed=0, size="small")
    return world / "mllmu"


def test_methods_lists_every_method_with_defaults():
    result = pulse("methods")
    assert result.returncode == 0
    for name in (
        "ga",
        "ga_kl",
        "gd",
        "kl_min",
        "npo",
        "simnpo",
        "idk",
        "idk_dpo",
        "rmu",
        "mmunlearner",
    ):
        assert any(line.startswith(name + " ") for line in result.stdout.splitlines()), name
    assert "beta=0.1" in result.stdout


def test_unlearn_one_request(model_dir, mllmu, tmp_path):
    out = tmp_path / "npo"
    result = pulse(
        "unlearn",
        "--model",
        str(model_dir),
        "--data",
        str(mllmu),
        "--forget",
        "forget_10",
        "--retain",
        "retain_90",
        "--method",
        "npo",
        "--set",
        "beta=0.2",
        "--max-steps",
        "2",
        "--batch-size",
        "2",
        "--lr",
        "1e-2",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "result.json").read_text())
    assert record["status"] == "ok" and record["params"]["beta"] == 0.2
    assert (out / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--method", "nope"], "nope"),
        (["--method", "npo", "--set", "beta=abc"], "beta"),
        (["--method", "ga", "--scope", "everything"], "--scope"),
    ],
)
def test_unlearn_bad_input_is_one_line(model_dir, mllmu, tmp_path, extra, needle):
    result = pulse(
        "unlearn",
        "--model",
        str(model_dir),
        "--data",
        str(mllmu),
        "--forget",
        "forget_10",
        "--out",
        str(tmp_path / "x"),
        *extra,
    )
    assert result.returncode == 2
    assert needle in result.stderr and "Traceback" not in result.stderr
