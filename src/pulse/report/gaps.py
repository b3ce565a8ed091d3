"""What a run is missing, in plain sentences: unreadable files, stages not done, cells that
diverged, failed or never reported, measurements absent from a finished cell."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pulse.errors import ConfigError
from pulse.report.rundir import RunDir
from pulse.report.tables import MISSING, Table, TableRow

DONE = "done"


def find_gaps(run: RunDir, tables: Sequence[Table]) -> list[str]:
    gaps = list(run.problems)
    if run.finished is False:
        gaps.append(
            "The run did not finish (the manifest says finished: false): this report shows what "
            "was measured so far."
        )
    gaps += _stages(run.stages)
    gaps += _unreported(run.config, tables)
    for table in tables:
        gaps += _table_gaps(table)
    return gaps


def _stages(stages: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    never_ran = []
    for stage, entry in stages.items():
        status = entry.get("status")
        error = entry.get("error")
        if status == DONE:
            continue
        if status == "pending":
            never_ran.append(stage)
        elif status == "running":
            out.append(f"Stage {stage} was interrupted while running.")
        else:
            out.append(f"Stage {stage} {status}" + (f": {error}" if error else "."))
    if never_ran:
        out.append(f"{len(never_ran)} stage(s) never ran: {', '.join(never_ran)}.")
    return out


def expected_cells(config: Any) -> dict[str, list[str]]:
    """Method labels per scenario the run's config enables, by the protocol's own rules; a
    config the protocol cannot read (missing, edited, from another version) expects nothing."""
    if not isinstance(config, dict):
        return {}
    from pulse.protocol.config import parse_config  # imports torch: only when there is a config

    try:
        parsed = parse_config(config)
    except (ConfigError, ValueError):
        return {}
    return {name: [m.name for m in parsed.methods_of(name)] for name in parsed.enabled()}


def _unreported(config: Any, tables: Sequence[Table]) -> list[str]:
    by_scenario = {t.scenario: t for t in tables}
    out = []
    for scenario, methods in expected_cells(config).items():
        table = by_scenario.get(scenario)
        if table is None:
            out.append(f"Scenario {scenario} is enabled in the config but has no results.")
            continue
        reported = {r.method for r in table.method_rows}
        absent = [m for m in methods if m not in reported]
        if absent:
            out.append(f"{scenario}: no results for method {', '.join(absent)}.")
    return out


def _table_gaps(table: Table) -> list[str]:
    out = []
    if table.before is None:
        out.append(f"{table.scenario}: no before measurement, so no deltas against it.")
    absent: dict[tuple[str, str, int], list[int]] = {}
    for row in table.method_rows:
        if row.status == MISSING:
            absent.setdefault((row.method, row.setting, row.requests), []).append(row.request)
        elif row.status != "ok":
            detail = f": {row.detail}" if row.detail else ""
            out.append(f"{table.scenario}: {row.label} {row.status}{detail}.")
    for (method, setting, requests), missing in absent.items():
        name = f"{method} ({setting})" if setting else method
        numbers = ", ".join(map(str, missing))
        out.append(f"{table.scenario}: {name} has no result for request {numbers} of {requests}.")
    for row in table.rows:
        lacking = _lacking(table, row)
        if lacking:
            out.append(f"{table.scenario}: {row.label} has no {', '.join(lacking)}.")
    return out


def _lacking(table: Table, row: TableRow) -> list[str]:
    """Columns that ``row`` lacks although a row of the same shape has them: a before row is
    compared with the before row only, a request of a chain with other requests, and so on, so
    a column that does not apply to a row (a batch row has no "forgotten so far", the oracle no
    "current request") is not reported."""
    if row.status != "ok":
        return []

    def shape(r: TableRow) -> tuple[bool, bool, bool]:
        return (r.is_before, r.is_oracle, r.requests > 1)

    peers = [r for r in table.rows if shape(r) == shape(row) and r.status == "ok"]
    return [
        column.title
        for column in table.columns
        if row.value(column.key) is None and any(p.value(column.key) is not None for p in peers)
    ]
