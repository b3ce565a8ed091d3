"""`pulse run` and `pulse report` as a user runs them: real process, exit codes, files."""

from __future__ import annotations

import pytest
import yaml


def write_config(path, config):
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow  # the heaviest of its kind (2-core suite time): pytest -m slow
def test_run_report_resume_and_refusal(pulse, mini_config, tmp_path):
    config = {**mini_config, "methods": [{"method": "ga"}]}
    config["scenarios"] = {
        "finetuned": {"people": 4},
        "pretrained": {"enabled": False},
        "sequential": {"requests": 2, "batch": True},
        "scope": {"enabled": False},
        "pebench": {"enabled": False},
    }
    path = write_config(tmp_path / "mini.yaml", config)
    out = tmp_path / "run"
    first = pulse("run", str(path), "--out", str(out))
    assert first.returncode == 0, first.stderr[-2000:]
    for name in ("config.yaml", "manifest.json", "results.jsonl", "report.md", "report.html"):
        assert (out / name).is_file(), name
    assert "report:" in first.stdout

    again = pulse("run", str(path), "--out", str(out))
    assert again.returncode == 0
    assert "[finetuned/ga]" not in again.stdout  # every stage read back, none re-run

    changed = pulse("run", str(path), "--out", str(out), "--set", "train.lr=0.5")
    assert changed.returncode == 2
    assert changed.stderr.strip().count("\n") == 0
    assert "different config (changed: train.lr)" in changed.stderr

    report = pulse("report", str(out))
    assert report.returncode == 0 and "report:" in report.stdout


def test_bad_config_and_bad_run_directory_are_one_line(pulse, tmp_path):
    path = write_config(tmp_path / "bad.yaml", {"scenarios": {"sequential": {"requests": 0}}})
    result = pulse("run", str(path), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {path}: scenarios.sequential.requests: "
        "Input should be greater than or equal to 1, got 0"
    )
    assert not (tmp_path / "run").exists()
    unknown = pulse("run", str(path), "--set", "methods=[{method: nope}]")
    assert unknown.returncode == 2 and "unknown unlearning method 'nope'" in unknown.stderr
    missing = pulse("report", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "not a run directory" in missing.stderr
