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


# --- text that is not UTF-8 ---------------------------------------------------------------------

LATIN1 = "train:\n  lr: 0.001  # r\xe9glage\n".encode("latin-1")


def test_a_config_that_is_not_utf8_is_named(cli, tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_bytes(LATIN1)
    out = tmp_path / "run"
    refused(*cli("run", "--out", out, config), str(config), "not UTF-8", "byte 0xe9 on line 2")
    assert not out.exists()


@pytest.mark.parametrize("option", ["--forget", "--retain"])
def test_an_id_list_that_is_not_utf8_is_named(cli, tmp_path, option):
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"fict_001\nfict_\xe9\n")
    out = tmp_path / "out"
    other = "fict_009" if option == "--retain" else "fict_010"
    forget = other if option == "--retain" else str(ids)
    retain = ["--retain", str(ids)] if option == "--retain" else []
    code, err = cli(
        "unlearn",
        *("--model", tmp_path, "--data", tmp_path, "--forget", forget, *retain),
        *("--method", "ga_kl", "--out", out),
    )
    refused(code, err, str(ids), "not UTF-8")
    assert not out.exists()


def _run_dir(tmp_path: Path) -> Path:
    from pulse.protocol.config import parse_config
    from pulse.protocol.results import ResultRow
    from pulse.protocol.store import RunStore

    store = RunStore.open(tmp_path / "run", parse_config({"seed": 1}))
    rows = [
        ResultRow("finetuned", "finetuned", m, "", 1, 1, s, "all", "accuracy", 0.5, n=4)
        for m in ("before", "ga")
        for s in ("forget", "retain")
    ]
    store.run_stage("finetuned/before", lambda: rows[:2])
    store.run_stage("finetuned/ga", lambda: rows[2:])
    return store.root


@pytest.mark.parametrize(
    ("file", "damage", "named"),
    [
        ("config.yaml", lambda p: p.write_bytes(b"seed: \xff\n"), "config.yaml: not UTF-8"),
        ("results.jsonl", lambda p: p.write_bytes(p.read_bytes() + b"\xff\n"), "results.jsonl"),
        ("manifest.json", lambda p: p.write_bytes(p.read_bytes()[:50]), "manifest.json"),
        (
            "stages/finetuned__ga.jsonl",
            lambda p: p.write_bytes(p.read_bytes()[:-30]),
            "stages/finetuned__ga.jsonl: cut in the middle of row 2",
        ),
    ],
    ids=["config-latin1", "results-latin1", "manifest-truncated", "stage-cut"],
)
def test_report_on_a_damaged_run_directory_names_the_file(cli, tmp_path, file, damage, named):
    root = _run_dir(tmp_path)
    damage(root / file)
    code, err = cli("report", root)
    assert code == 0 and "Traceback" not in err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert any(named in line for line in warnings), err
    assert named.split(":")[0] in (root / "report.md").read_text(encoding="utf-8")
