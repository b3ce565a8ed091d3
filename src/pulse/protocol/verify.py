"""Checking a run directory's files against what its manifest recorded when each stage was
marked done (row count and SHA-256 of the stage's rows file). Light (no torch): the report
reads it too, to name a damaged file instead of reporting fewer rows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pulse.errors import DataError
from pulse.files import read_text, sha256_file
from pulse.protocol.results import RESULTS_FILE, read_results

FINISHED = ("done", "diverged", "failed")


def stage_file(root: Path, stage: str) -> Path:
    """Where ``stage``'s rows are kept in the run directory ``root``."""
    return root / "stages" / f"{re.sub(r'[^A-Za-z0-9_.+-]+', '__', stage)}.jsonl"


def stage_file_problem(path: Path, record: dict[str, Any]) -> str | None:
    """What is wrong with a finished stage's rows file against its manifest ``record``, or
    ``None``. A record of an older version (no checksum) is checked by reading the rows."""
    if not path.is_file():
        return "missing"
    expected = record.get("sha256")
    if expected is None:
        try:
            text = read_text(path)
            read_results(path)
        except DataError as exc:
            return exc.detail
        return None if not text or text.endswith("\n") else "cut in the middle of a line"
    if sha256_file(path) == expected:
        return None
    rows = record.get("rows")
    try:
        text = read_text(path)
    except DataError:
        text = None
    if text is not None and isinstance(rows, int):
        found = len([line for line in text.splitlines() if line.strip()])
        if text and not text.endswith("\n"):
            return f"cut in the middle of row {found} (the manifest recorded {rows} rows)"
        if found != rows:
            return f"holds {found} of the {rows} rows the manifest recorded (cut or edited)"
    return "differs from what the stage wrote (its SHA-256 does not match the manifest's)"


def run_problems(root: Path, manifest: dict[str, Any], results_rows: int | None) -> list[str]:
    """One line per damaged file of the run directory ``root``: each finished stage's rows
    file that is there, and ``results.jsonl`` (``results_rows`` rows read) when it does not
    hold the rows of the finished stages."""
    stages = manifest.get("stages")
    if not isinstance(stages, dict):
        return []
    problems, expected = [], 0
    for stage, record in stages.items():
        if not isinstance(record, dict) or record.get("status") not in FINISHED:
            continue
        path = stage_file(root, str(stage))
        # The report reads results.jsonl, not the stage files: one that is absent (a run
        # directory shared without them) is no problem there, one that differs is.
        problem = stage_file_problem(path, record) if path.is_file() else None
        if problem is not None:
            problems.append(
                f"{path.relative_to(root)}: {problem}; run `pulse run` again to redo the stage"
            )
        rows = record.get("rows")
        expected = expected + rows if expected is not None and isinstance(rows, int) else None
    if results_rows is not None and expected is not None and results_rows != expected:
        problems.append(
            f"{RESULTS_FILE}: holds {results_rows} rows, the finished stages {expected} "
            "(stale or damaged; run `pulse run` again to rebuild it)"
        )
    return problems
