"""A run directory written before the scenarios and metrics became plugins still reports:
rows without the fields later versions added (repeat, seeds, versus), rows of every built-in
scenario kind, and a metric no longer registered, in a results.jsonl with no manifest."""

from __future__ import annotations

import csv
import json

import pytest

from pulse.report import write_report

CELL = {"setting": "", "request": 1, "requests": 1, "status": "ok", "detail": None}


def row(scenario, method, split, modality, metric, value, **extra):
    request = 0 if method == "before" else 1
    low = None if value is None else max(0.0, value - 0.1)
    high = None if value is None else min(1.0, value + 0.1)
    return {
        **CELL,
        "scenario": scenario,
        "kind": scenario,
        "method": method,
        "request": request,
        "split": split,
        "modality": modality,
        "metric": metric,
        "value": value,
        "n": 20,
        "low": low,
        "high": high,
        "change_low": None,
        "change_high": None,
        **extra,
    }


def older_rows():
    rows = []
    for method, forget in (("before", 0.9), ("ga", 0.3)):
        for modality in ("multimodal", "text", "all"):
            rows.append(row("finetuned", method, "forget", modality, "accuracy", forget))
            rows.append(row("finetuned", method, "retain", modality, "accuracy", 0.85))
        rows.append(row("finetuned", method, "general", "all", "circular", 0.6))
        # A metric this version does not register: shown nowhere, refused nowhere.
        rows.append(row("finetuned", method, "forget", "all", "retired_metric", 0.5))
    for method in ("before", "ga"):
        for group in ("efficacy", "generality", "retain", "scope"):
            rows.append(row("pebench", method, group, "multimodal", "score", 0.5, setting="person"))
    return rows


def test_an_older_run_directory_still_reports(tmp_path):
    run = tmp_path / "old-run"
    run.mkdir()
    lines = [json.dumps(r, sort_keys=True) for r in older_rows()]
    (run / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    files = write_report(run)
    report = files.markdown.read_text(encoding="utf-8")
    assert "Fine-tuned knowledge" in report and "PEBench: person and event targets" in report
    assert "retired_metric" not in report
    with (run / "tables" / "finetuned.csv").open(encoding="utf-8") as handle:
        by_method = {r["method"]: r for r in csv.DictReader(handle)}
    assert float(by_method["ga"]["forget_multimodal"]) == pytest.approx(30.0)  # in %
    assert float(by_method["ga"]["forget_multimodal_delta"]) == pytest.approx(
        -60.0
    )  # points against before
    assert files.html.is_file()
