"""What a reader needs to reproduce the run: config, versions, seed, stages and timing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pulse.protocol.results import ResultRow
from pulse.report.rundir import RunDir
from pulse.report.tables import TIME_SPLIT, Table

TRAIN, EVAL = "train_seconds", "eval_seconds"


@dataclass(frozen=True)
class RunInfo:
    facts: list[tuple[str, str]]  # (name, value): hash, created, seed, finished
    versions: list[tuple[str, str]]
    stages: list[tuple[str, str, str, str]]  # stage, status, seconds, error
    timings: list[tuple[str, str, str, str]]  # scenario, row, train seconds, eval seconds
    config_text: str | None


def seconds(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) and not isinstance(value, bool) else ""


def build_run_info(run: RunDir, tables: Sequence[Table]) -> RunInfo:
    manifest = run.manifest
    finished = {True: "yes", False: "no", None: "unknown"}[run.finished]
    facts = [
        ("config hash", str(manifest.get("config_hash", "unknown"))),
        ("created", str(manifest.get("created", "unknown"))),
        ("seed", "unknown" if run.seed is None else str(run.seed)),
        ("finished", finished),
    ]
    raw_versions = manifest.get("versions")
    versions = (
        sorted((str(k), str(v)) for k, v in raw_versions.items())
        if isinstance(raw_versions, dict)
        else []
    )
    stages = [
        (
            stage,
            str(entry.get("status", "unknown")),
            seconds(entry.get("seconds")),
            str(entry.get("error") or ""),
        )
        for stage, entry in run.stages.items()
    ]
    return RunInfo(facts, versions, stages, _timings(run.rows, tables), run.config_text)


def _timings(rows: Sequence[ResultRow], tables: Sequence[Table]) -> list[tuple[str, str, str, str]]:
    """Training and evaluation seconds per cell, labelled as the cell's table row."""
    labels = {
        (t.scenario, r.method, r.setting, r.request, r.requests): r.label
        for t in tables
        for r in t.rows
    }
    cells: dict[tuple, dict[str, float]] = {}
    for row in rows:
        if row.split == TIME_SPLIT and row.value is not None:
            key = (row.scenario, row.method, row.setting, row.request, row.requests)
            cells.setdefault(key, {})[row.metric] = row.value
    return [
        (key[0], labels.get(key, key[1]), seconds(t.get(TRAIN)), seconds(t.get(EVAL)))
        for key, t in cells.items()
    ]
