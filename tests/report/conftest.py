"""A fabricated run directory with known numbers, written the way the protocol writes one
(``write_results``, config.yaml, manifest.json), so every table cell can be checked by hand."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pulse.files import write_json, write_text
from pulse.protocol.results import ResultRow, status_row, write_results

CONFIG = """\
seed: 7
methods: [{method: ga}, {method: ga_kl}, {method: npo}]
scenarios:
  sequential: {requests: 3, methods: [{method: ga}, {method: ga_kl}]}
  scope: {methods: [{method: ga}]}
  pebench: {enabled: true, methods: [{method: ga}, {method: npo}]}
  robustness: {enabled: false}  # on by default for the world; these fixtures hold no attacks
"""
STAGES = ("finetuned", "pretrained", "sequential", "scope", "pebench")


def mcq(
    scenario: str,
    kind: str,
    method: str,
    setting: str = "",
    request: int = 1,
    requests: int = 1,
    *,
    forget: tuple[float, float],
    retain: tuple[float, float],
    general: float,
    forgotten: tuple[float, float] | None = None,
) -> list[ResultRow]:
    """The rows of one cell: forget / retain (and forgotten) accuracy per modality, general
    capability (circular and vanilla)."""

    def row(split: str, modality: str, metric: str, value: float) -> ResultRow:
        return ResultRow(
            scenario, kind, method, setting, request, requests, split, modality, metric, value, 10
        )

    rows = []
    for split, pair in (("forget", forget), ("retain", retain), ("forgotten", forgotten)):
        if pair is not None:
            rows += [
                row(split, m, "accuracy", v)
                for m, v in zip(("multimodal", "text"), pair, strict=True)
            ]
    rows.append(row("general", "all", "circular", general))
    rows.append(row("general", "all", "vanilla", min(1.0, general + 0.05)))
    return rows


def before(scenario: str, kind: str, requests: int = 1, **values) -> list[ResultRow]:
    return mcq(scenario, kind, "before", "", 0, requests, **values)


def pebench(method: str, setting: str, request: int, values: tuple) -> list[ResultRow]:
    splits = ("efficacy", "generality", "retain", "scope")
    return [
        ResultRow("pebench", "pebench", method, setting, request, 1, s, "all", "score", v, 20)
        for s, v in zip(splits, values, strict=True)
    ]


def full_rows() -> list[ResultRow]:
    ft, pt, seq, sc = "finetuned", "pretrained", "sequential", "scope"
    rows = before(ft, ft, forget=(0.80, 0.78), retain=(0.79, 0.77), general=0.75)
    rows += mcq(ft, ft, "ga", forget=(0.10, 0.40), retain=(0.30, 0.50), general=0.45)
    rows += mcq(ft, ft, "ga_kl", forget=(0.30, 0.50), retain=(0.70, 0.72), general=0.70)
    rows.append(status_row(ft, ft, "npo", "", 1, 1, "diverged", "loss nan at step 3"))

    rows += before(pt, pt, forget=(0.90, 0.85), retain=(0.88, 0.86), general=0.75)
    rows += mcq(pt, pt, "ga", forget=(0.05, 0.30), retain=(0.10, 0.20), general=0.05)
    rows += mcq(pt, pt, "ga_kl", forget=(0.40, 0.60), retain=(0.50, 0.60), general=0.30)
    rows += mcq(pt, pt, "npo", forget=(0.20, 0.50), retain=(0.40, 0.55), general=0.25)

    rows += before(seq, seq, 3, forget=(0.80, 0.78), retain=(0.79, 0.77), general=0.75)
    ga_chain = [
        ((0.60, 0.70), (0.20, 0.50), (0.60, 0.70), 0.60),
        ((0.40, 0.60), (0.15, 0.45), (0.45, 0.60), 0.40),
        ((0.10, 0.45), (0.10, 0.45), (0.25, 0.50), 0.20),
    ]
    ga_kl_chain = [
        ((0.65, 0.72), (0.30, 0.55), (0.75, 0.75), 0.72),
        ((0.50, 0.66), (0.25, 0.50), (0.72, 0.74), 0.70),
        ((0.35, 0.55), (0.20, 0.50), (0.70, 0.72), 0.68),
    ]
    for method, chain in (("ga", ga_chain), ("ga_kl", ga_kl_chain)):
        for request, (forget, forgotten, retain, general) in enumerate(chain, start=1):
            rows += mcq(
                seq, seq, method, "sequential", request, 3,
                forget=forget, forgotten=forgotten, retain=retain, general=general,
            )  # fmt: skip
    rows += mcq(seq, seq, "ga", "batch", forget=(0.12, 0.42), retain=(0.35, 0.55), general=0.50)
    rows += mcq(seq, seq, "ga_kl", "batch", forget=(0.30, 0.50), retain=(0.7, 0.7), general=0.70)

    rows += before(sc, sc, forget=(0.80, 0.78), retain=(0.79, 0.77), general=0.75)
    rows += mcq(sc, sc, "ga", "llm", forget=(0.25, 0.35), retain=(0.60, 0.65), general=0.49)
    rows += mcq(
        sc, sc, "ga", "projector+llm", forget=(0.10, 0.35), retain=(0.55, 0.62), general=0.71
    )

    rows += pebench("before", "", 0, (0.05, 0.04, 0.90, 0.85))
    rows += pebench("ga", "person", 1, (0.95, 0.80, 0.20, 0.70))
    rows += pebench("ga", "event", 1, (0.40, 0.30, 0.80, 0.30))
    rows += pebench("npo", "person", 1, (0.85, 0.75, 0.60, 0.75))
    return rows


def manifest(finished: bool = True, **stages: dict) -> dict:
    entries = {name: {"status": "done", "seconds": 10.0, "error": None} for name in STAGES}
    entries["finetuned/ga"] = {
        "status": "done",
        "seconds": 16.0,
        "error": None,
        "train_seconds": 12.5,
        "eval_seconds": 3.25,
    }
    entries.update(stages)
    return {
        "config_hash": "abc123",
        "created": "2025-01-01T00:00:00",
        "versions": {"pulse-unlearn": "0.1.0", "torch": "2.13.0"},
        "seed": 7,
        "stages": entries,
        "finished": finished,
    }


def make_run(
    root: Path,
    rows: list[ResultRow] | None,
    manifest_data: dict | None = None,
    config: str | None = CONFIG,
    name: str = "run",
) -> Path:
    """Write a run directory under ``root``; ``None`` for an argument leaves that file out."""
    run = root / name
    run.mkdir()
    if rows is not None:
        write_results(run / "results.jsonl", rows)
    if manifest_data is not None:
        write_json(run / "manifest.json", manifest_data)
    if config is not None:
        write_text(run / "config.yaml", config)
    return run


@pytest.fixture
def write_run(tmp_path) -> Callable[..., Path]:
    return lambda *args, **kwargs: make_run(tmp_path, *args, **kwargs)


@pytest.fixture
def full_run(write_run) -> Path:
    return write_run(full_rows(), manifest())
