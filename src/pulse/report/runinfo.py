"""What a reader needs to reproduce the run: config, versions, seed, precision, stages and
timing."""

from __future__ import annotations

from dataclasses import dataclass

from pulse.report.rundir import RunDir

TRAIN, EVAL = "train_seconds", "eval_seconds"


@dataclass(frozen=True)
class RunInfo:
    facts: list[tuple[str, str]]  # (name, value): hash, created, seed, precision, finished
    versions: list[tuple[str, str]]
    stages: list[tuple[str, str, str, str]]  # stage, status, seconds, error
    timings: list[tuple[str, str, str, str]]  # scenario, row, train seconds, eval seconds
    config_text: str | None


def seconds(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) and not isinstance(value, bool) else ""


def build_run_info(run: RunDir) -> RunInfo:
    manifest = run.manifest
    finished = {True: "yes", False: "no", None: "unknown"}[run.finished]
    facts = [
        ("config hash", str(manifest.get("config_hash", "unknown"))),
        ("created", str(manifest.get("created", "unknown"))),
        ("seed", "unknown" if run.seed is None else str(run.seed)),
        ("precision", str(manifest.get("precision", "unknown"))),
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
    return RunInfo(facts, versions, stages, _timings(run), run.config_text)


def _timings(run: RunDir) -> list[tuple[str, str, str, str]]:
    """Training and evaluation seconds of every stage that ran a request (the manifest keeps
    them: timings differ from run to run, so they stay out of results.jsonl)."""
    out = []
    for stage, entry in run.stages.items():
        if isinstance(entry, dict) and (TRAIN in entry or EVAL in entry):
            scenario, _, cell = stage.partition("/")
            out.append((scenario, cell, seconds(entry.get(TRAIN)), seconds(entry.get(EVAL))))
    return out
