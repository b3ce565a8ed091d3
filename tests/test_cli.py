"""The command line as a user meets it: help everywhere, one-line errors, non-zero exits."""

from __future__ import annotations

import pytest
import typer

from pulse.cli import app


def _leaf_paths(command, prefix=()) -> list[tuple[str, ...]]:
    """Every command path of the click tree behind the typer app."""
    subs = getattr(command, "commands", None)
    if not subs:
        return [prefix]
    paths = [prefix]
    for name, sub in subs.items():
        paths += _leaf_paths(sub, (*prefix, name))
    return paths


def test_help_on_every_command(pulse):
    paths = _leaf_paths(typer.main.get_command(app))
    assert ("world", "build") in paths and ("data", "validate") in paths
    for path in paths:
        result = pulse(*path, "--help")
        assert result.returncode == 0, (path, result.stderr)
        assert "Usage" in result.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["data", "validate", "pebench", "no/such/PEBench.csv"], "no/such/PEBench.csv"),
        (["data", "validate", "parquet", "x"], "unknown data format"),
        (["world", "build", "--out", "unused", "--size", "huge"], "unknown world size"),
        (["leaderboard", "--set", "methods=[nope]"], "--set methods: unknown unlearning method"),
        # each leaderboard case starts the whole stack in a process of its own: one by default
        pytest.param(
            ["leaderboard", "no/such.yaml"],
            "no/such.yaml: config file not found",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_bad_input_is_one_line_and_non_zero(pulse, args, needle):
    result = pulse(*args)
    assert result.returncode != 0
    err = result.stderr.strip()
    assert needle in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_data_validate_names_the_row(pulse, tmp_path):
    csv = tmp_path / "PEBench.csv"
    csv.write_text("person,event,image,keywords\nAna,fair,../outside.png,a;b\n")
    result = pulse("data", "validate", "pebench", str(csv))
    assert result.returncode != 0
    assert "row 2" in result.stderr and "image" in result.stderr


def test_data_validate_reads_a_world_directory_as_pulse_eval_does(small_world):
    from pulse.data.validate import validate

    assert validate("mllmu", small_world).startswith(f"MLLMU-Bench {small_world / 'mllmu'}: ")
    assert validate("mmbench", small_world).startswith(
        f"MMBench {small_world / 'mmbench' / 'dev.tsv'}: OK"
    )
    assert validate("pebench", small_world).startswith(f"PEBench {small_world / 'pebench'}: OK")
