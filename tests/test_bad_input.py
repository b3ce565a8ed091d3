"""Bad input to every command, as a hostile user gives it: each case is one line on stderr
naming the file / row / field or option, exit code 2, no traceback, and nothing written that
looks finished. The CLI runs in-process (one torch import for the whole suite); a subprocess
case in tests/test_cli.py checks the real exit code."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pulse.cli import main


@pytest.fixture
def cli(monkeypatch, capsys):
    """``cli(*args)`` -> (exit code, stderr) of ``pulse ARGS``."""

    def run(*args: str | Path) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["pulse", *map(str, args)])
        with pytest.raises(SystemExit) as exit_:
            main()
        err = capsys.readouterr().err
        return exit_.value.code, err

    return run


def refused(code: int, err: str, *needles: str) -> None:
    """One line, exit 2, no traceback, every needle in the line."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


# --- numbers the CLI and configs accept but cannot use ---------------------------------------

UNLEARN_NUMBERS = [
    (["--lr", "-1"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--batch-size", "0"], "--batch-size"),
    (["--epochs", "nan"], "--epochs"),
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "inf"], "--epochs"),
    (["--max-steps", "0"], "--max-steps"),
    (["--loss-bound", "-1"], "--loss-bound"),
    (["--loss-bound", "nan"], "--loss-bound"),
    (["--grad-accum", "0"], "--grad-accum"),
    (["--rank", "0"], "--rank"),
]


@pytest.mark.parametrize(("options", "named"), UNLEARN_NUMBERS, ids=lambda v: " ".join(v))
def test_unlearn_refuses_unusable_numbers_before_creating_anything(cli, tmp_path, options, named):
    out = tmp_path / "out"
    code, err = cli(
        "unlearn",
        *("--model", tmp_path / "model", "--data", tmp_path / "data", "--forget", "a,b"),
        *("--method", "ga", "--out", out),
        *options,
    )
    refused(code, err, named)
    assert not out.exists()


RUN_NUMBERS = [
    ("train.lr=.inf", "train.lr"),
    ("train.lr=-1", "train.lr"),
    ("train.epochs=.nan", "train.epochs"),
    ("train.max_steps=0", "train.max_steps"),
    ("train.batch_size=0", "train.batch_size"),
    ("train.loss_bound=-1", "train.loss_bound"),
    ("models.dtype=float64", "models.dtype"),
    ("methods=[{method: ga, lr: .inf}]", "methods.0.lr"),
    ("methods=[{method: ga, max_steps: 0}]", "methods.0.max_steps"),
    ("scenarios.finetuned.train.lr=.nan", "scenarios.finetuned.train.lr"),
    ("eval.batch_size=0", "eval.batch_size"),
]


@pytest.mark.parametrize(("override", "named"), RUN_NUMBERS, ids=[c[0] for c in RUN_NUMBERS])
def test_run_refuses_unusable_numbers_before_creating_anything(cli, tmp_path, override, named):
    """The same rules in the YAML and on the command line: each value once as --set, once
    written in the config file."""
    key, value = override.split("=", 1)
    out = tmp_path / "run"
    code, err = cli("run", "--out", out, "--set", override, _config(tmp_path, ""))
    refused(code, err, named)
    parts = key.split(".")
    text = "".join(f"{'  ' * depth}{part}:\n" for depth, part in enumerate(parts[:-1]))
    config = _config(tmp_path, f"{text}{'  ' * (len(parts) - 1)}{parts[-1]}: {value}\n")
    code, err = cli("run", "--out", out, config)
    refused(code, err, str(config), named)
    assert not out.exists()


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path
