"""Read a run directory for the report, tolerating whatever an interrupted run left behind.

Nothing here raises on a missing or damaged file: the report of a partial run must still be
written, and say what it could not read (``RunDir.problems``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pulse.errors import DataError
from pulse.files import read_text
from pulse.protocol.results import RESULTS_FILE, ResultRow, read_results
from pulse.protocol.verify import run_problems

CONFIG_FILE = "config.yaml"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class RunDir:
    path: Path
    rows: list[ResultRow]
    config_text: str | None
    config: Any
    manifest: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    # Points along requests (train.eval_every: rows with a step), apart from the cells' rows.
    points: list[ResultRow] = field(default_factory=list)

    @property
    def finished(self) -> bool | None:
        """The manifest's ``finished`` flag; ``None`` when the manifest does not say."""
        value = self.manifest.get("finished")
        return value if isinstance(value, bool) else None

    @property
    def stages(self) -> dict[str, dict[str, Any]]:
        stages = self.manifest.get("stages")
        if not isinstance(stages, dict):
            return {}
        return {str(k): v if isinstance(v, dict) else {} for k, v in stages.items()}

    @property
    def seed(self) -> Any:
        if "seed" in self.manifest:
            return self.manifest["seed"]
        return self.config.get("seed") if isinstance(self.config, dict) else None


def load_run(run_dir: str | Path) -> RunDir:
    path = Path(run_dir)
    problems: list[str] = []
    if not path.is_dir():
        problems.append(f"{path} is not a directory: nothing to report")
    rows = _read_rows(path / RESULTS_FILE, problems)
    config_text, config = _read_config(path / CONFIG_FILE, problems)
    manifest = _read_manifest(path / MANIFEST_FILE, problems)
    counted = len(rows) if (path / RESULTS_FILE).is_file() else None
    problems.extend(run_problems(path, manifest, counted))
    points = [r for r in rows if r.on_path]
    rows = [r for r in rows if not r.on_path]
    return RunDir(path, rows, config_text, config, manifest, problems, points)


def _read_rows(path: Path, problems: list[str]) -> list[ResultRow]:
    """Every readable row; unreadable lines are skipped and named (a run killed mid-way may
    leave a results file written by an older version, or edited by hand)."""
    if not path.is_file():
        problems.append(f"{RESULTS_FILE} is missing: no measurements to report")
        return []
    bad: list[int] = []
    rows = read_results(path, skipped=bad)
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        problems.append(f"{RESULTS_FILE}: {len(bad)} unreadable line(s) skipped ({shown})")
    return rows


def _read_config(path: Path, problems: list[str]) -> tuple[str | None, Any]:
    if not path.is_file():
        problems.append(f"{CONFIG_FILE} is missing: the run's configuration cannot be shown")
        return None, None
    try:
        text = read_text(path)
    except DataError as exc:
        problems.append(f"{CONFIG_FILE}: {exc.detail}; the run's configuration cannot be shown")
        return None, None
    try:
        return text, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problems.append(f"{CONFIG_FILE} is not valid YAML ({type(exc).__name__}); shown as text")
        return text, None


def _read_manifest(path: Path, problems: list[str]) -> dict[str, Any]:
    if not path.is_file():
        problems.append(f"{MANIFEST_FILE} is missing: stages, versions and timing are unknown")
        return {}
    try:
        manifest = json.loads(read_text(path))
    except (ValueError, DataError):
        problems.append(f"{MANIFEST_FILE} is not valid JSON: stages and versions are unknown")
        return {}
    if not isinstance(manifest, dict):
        problems.append(f"{MANIFEST_FILE} is not a JSON object: stages and versions are unknown")
        return {}
    return manifest
