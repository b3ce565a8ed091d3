"""`pulse unlearn` and `pulse methods` as a user runs them."""

from __future__ import annotations

import json

import pytest

from pulse.methods.request import train_pairs


@pytest.fixture(scope="module")
def mllmu(small_world):
    return small_world / "mllmu"


def test_methods_lists_every_method_with_defaults(pulse):
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


def unlearn(pulse, model_dir, mllmu, out, *extra):
    return pulse(
        "unlearn", "--model", str(model_dir), "--data", str(mllmu), "--forget", "forget_10",
        "--out", str(out), *extra,
    )  # fmt: skip


def test_unlearn_one_request(pulse, model_dir, mllmu, tmp_path):
    out = tmp_path / "npo"
    result = unlearn(
        pulse, model_dir, mllmu, out, "--retain", "retain_90", "--method", "npo",
        "--set", "beta=0.2", "--max-steps", "2", "--batch-size", "2", "--lr", "1e-2",
        "--pairs-per-id", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "result.json").read_text())
    assert record["status"] == "ok" and record["params"]["beta"] == 0.2
    # Two pairs of each person (the world's profiles have more).
    forget, retain = record["forget_ids"], record["retain_ids"]
    assert len(train_pairs(mllmu, forget)) > 2 * len(forget)
    assert record["n_forget_examples"] == 2 * len(forget)
    assert record["n_retain_examples"] == 2 * len(retain)
    assert (out / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--method", "nope"], "nope"),
        # each case is a process of its own (about 12 s on 2 cores): one in the default suite
        pytest.param(["--method", "npo", "--set", "beta=abc"], "beta", marks=pytest.mark.slow),
        pytest.param(
            ["--method", "ga", "--scope", "everything"], "--scope", marks=pytest.mark.slow
        ),
        pytest.param(
            ["--method", "ga", "--pairs-per-id", "0"], "--pairs-per-id", marks=pytest.mark.slow
        ),
    ],
)
def test_unlearn_bad_input_is_one_line(pulse, model_dir, mllmu, tmp_path, extra, needle):
    result = unlearn(pulse, model_dir, mllmu, tmp_path / "x", *extra)
    assert result.returncode == 2
    assert needle in result.stderr and "Traceback" not in result.stderr
