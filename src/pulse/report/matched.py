"""The matched-forgetting tables and their reading (:mod:`pulse.protocol.trajectory`).

Each scenario whose requests were evaluated along the way gets a table: per method, the target
forget accuracy, the step where its path first reached it (or "not reached", with how far it
got), its retain accuracy and general capability there with their 95 % intervals, whether it
stopped early (``train.stop_at``), and beside them the same method at the end of its fixed
budget. The reading compares the methods at matched forgetting and against the fixed budget,
fine-tuned against pre-trained knowledge, and, for a swept hyper-parameter, names the value it
keeps (the most retain accuracy at matched forgetting) and why.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from pulse.protocol.cells import REFERENCES
from pulse.protocol.results import ResultRow
from pulse.protocol.trajectory import MATCHED, STOPPED
from pulse.report.reading import clear_leader, ok_rows, overlap_note, pct, pts
from pulse.report.tables import MISSING, Column, Table, TableRow, build_table, layout_of

SUFFIX = "-matched"
AT = "At matched forgetting"
END = "At the end (fixed budget)"
COLUMNS = (
    Column("matched_forget", AT, "forget target", "forget", MATCHED, "all", ranked=False),
    Column("matched_retain", AT, "retain", "retain", MATCHED, "all"),
    Column("matched_general", AT, "general", "general", MATCHED, "all"),
    Column("end_forget", END, "forget", "forget", "accuracy", "all"),
    Column("end_retain", END, "retain", "retain", "accuracy", "all"),
    Column("end_general", END, "general", "general", "circular"),
)
HEADER = ("method", "target reached at step", "stopped early")
TARGET = ": the target is "  # in a table's title, before where its target comes from
# A swept entry's label: the method's label, then the values it was given (pulse.protocol.config).
SWEPT = re.compile(r"^(?P<base>.+?)\[(?P<values>.+)\]$")


def matched_tables(rows: Sequence[ResultRow], methods: Sequence[str]) -> list[Table]:
    """A table per scenario with matched-forgetting rows, in the order of ``rows``."""
    by_scenario: dict[str, list[ResultRow]] = {}
    for row in rows:
        by_scenario.setdefault(row.scenario, []).append(row)
    tables = []
    for scenario, own in by_scenario.items():
        if not any(r.metric == MATCHED for r in own):
            continue
        sources = {
            r.detail.split(";")[0].removeprefix("target: ")
            for r in own
            if r.metric == MATCHED and r.split == "forget" and r.detail
        }
        title = f"{AT} ({scenario})"
        if len(sources) == 1:
            title += f"{TARGET}{sources.pop()}"
        # The cells placed at the target, beside before and the oracle (a sequential chain's
        # earlier requests are not).
        placed = {(r.method, r.setting, r.request) for r in own if r.metric == MATCHED}
        own = [
            r for r in own if r.method in REFERENCES or (r.method, r.setting, r.request) in placed
        ]
        layout = replace(layout_of(own[0].kind), title=title, columns=COLUMNS)
        table = build_table(scenario, own, methods, layout)
        steps = {
            (r.method, r.setting): r for r in own if r.metric == MATCHED and r.split == "forget"
        }
        stops = {(r.method, r.setting): r for r in own if r.metric == STOPPED}
        kept = {k for k, _ in kept_values(table, steps).values()}
        table_rows = tuple(
            replace(row, keys=_keys(row, steps, stops, kept))
            for row in table.rows
            if row.status != MISSING  # a chain's earlier requests are not placed
        )
        tables.append(
            replace(table, scenario=scenario + SUFFIX, title=title, header=HEADER, rows=table_rows)
        )
    return tables


def scenario_of(table: Table) -> str:
    return table.scenario.removesuffix(SUFFIX)


def name(row: TableRow) -> str:
    """A row's method, with its setting when it has one (``ga (batch)``)."""
    return f"{row.method} ({row.setting})" if row.setting else row.method


def _keys(
    row: TableRow,
    steps: dict[tuple[str, str], ResultRow],
    stops: dict[tuple[str, str], ResultRow],
    kept: set[str],
) -> tuple[str, ...]:
    label = name(row) + (" (kept)" if row.method in kept else "")
    if row.is_reference:
        return (label, "", "")
    target = steps.get((row.method, row.setting))
    stop = stops.get((row.method, row.setting))
    reached = "–" if target is None else reached_text(target)
    stopped = f"at step {stop.step:g}" if stop is not None and stop.step is not None else "no"
    return (label, reached, stopped)


def reached_text(row: ResultRow) -> str:
    """``12.5``, or ``not reached (...)`` as the row's detail says."""
    if row.step is not None:
        partly = row.seeds_reached is not None and row.seeds_reached < row.seeds
        return f"{row.step:.1f}" + (
            f" ({row.seeds_reached} of {row.seeds} seeds)" if partly else ""
        )
    detail = row.detail or ""
    found = re.search(r"not reached \((.*)\)", detail)
    return f"not reached ({found.group(1)})" if found else "not reached"


def kept_values(
    table: Table, steps: dict[tuple[str, str], ResultRow] | None = None
) -> dict[str, tuple[str, list[str]]]:
    """Per swept method (labels ``ga[lr=0.001]``, ...): the label kept, the one with the most
    retain accuracy at matched forgetting, and every label of the sweep."""
    sweeps: dict[str, list[TableRow]] = {}
    for row in ok_rows(table.method_rows):
        match = SWEPT.match(row.method)
        if match:
            sweeps.setdefault(match["base"], []).append(row)
    kept = {}
    for base, members in sweeps.items():
        reached = {r.method: v for r in members if (v := r.value("matched_retain")) is not None}
        if len(members) > 1 and reached:
            best = max(reached, key=reached.__getitem__)
            kept[base] = (best, [r.method for r in members])
    return kept


def matched_reading(tables: Sequence[Table]) -> list[str]:
    """The sentences of every matched-forgetting table, then across them."""
    out = []
    for table in tables:
        out += _compare(table)
        out += _sequential(table)
        out += _stopped(table)
        out += _sweeps(table)
    out += _knowledge(tables)
    return out


def _target_words(table: Table) -> str:
    rows = ok_rows(table.method_rows)
    value = next((v for r in rows if (v := r.value("matched_forget")) is not None), None)
    if value is None:
        return "the target"
    source = table.title.partition(TARGET)[2]
    return f"a forget accuracy of {pct(value)}" + (f", {source}" if source else "")


def _compare(table: Table) -> list[str]:
    scenario = scenario_of(table)
    rows = ok_rows(table.method_rows)
    reached = {name(r): r for r in rows if r.value("matched_retain") is not None}
    missed = [
        name(r) for r in rows if r.value("matched_forget") is not None and name(r) not in reached
    ]
    out = []
    if reached:
        ranked = sorted(reached, key=lambda k: -(reached[k].value("matched_retain") or 0))
        parts = [
            f"{label} {pct(reached[label].value('matched_retain') or 0)} "
            f"(at step {reached[label].keys[1]})"
            for label in ranked
        ]
        sentence = (
            f"In {scenario}, at matched forgetting ({_target_words(table)}) the retain "
            f"accuracy is {'; '.join(parts)}"
        )
        values = {k: r.value("matched_retain") or 0.0 for k, r in reached.items()}
        leader = clear_leader(values)
        if leader is not None:
            note = overlap_note(reached[leader], reached[ranked[1]], "matched_retain", ranked[1])
            sentence += f": {leader} keeps the most" + (f" ({note})" if note else "")
        out.append(sentence + ".")
        end = {name(r): v for r in rows if (v := r.value("end_retain")) is not None}
        first_end = clear_leader(end)
        if leader is not None and first_end is not None:
            if first_end != leader:
                out.append(
                    f"At the fixed budget {first_end} keeps the most retain accuracy in "
                    f"{scenario} ({pct(end[first_end])}), at matched forgetting {leader}: "
                    "the fixed-budget ranking mixes how much each method forgot with what it "
                    "cost."
                )
            else:
                out.append(
                    f"{leader} also keeps the most retain accuracy in {scenario} at the "
                    "fixed budget: the ranking holds at matched forgetting."
                )
    if missed:
        out.append(
            f"In {scenario}, {', '.join(missed)} did not reach {_target_words(table)} along "
            "its path: its cost at matched forgetting is unknown."
        )
    return out


def _sequential(table: Table) -> list[str]:
    """Per method with both: its chain of requests against one batch at matched forgetting."""
    rows = ok_rows(table.method_rows)
    out = []
    for method in dict.fromkeys(r.method for r in rows):
        chain = next((r for r in rows if r.method == method and r.requests > 1), None)
        batch = next((r for r in rows if r.method == method and r.requests <= 1), None)
        if chain is None or batch is None:
            continue
        a, b = chain.value("matched_retain"), batch.value("matched_retain")
        if a is None or b is None:
            continue
        note = overlap_note(chain, batch, "matched_retain")
        out.append(
            f"At matched forgetting, {method} keeps {pct(a)} retain accuracy after "
            f"{chain.requests} sequential requests against {pct(b)} in one batch "
            f"({(a - b) * 100:+.1f} points" + (f"; {note}" if note else "") + ")."
        )
    return out


def _stopped(table: Table) -> list[str]:
    stopped = [r for r in ok_rows(table.method_rows) if r.keys[2] not in ("", "no")]
    if not stopped:
        return []
    parts = [f"{name(r)} {r.keys[2]}" for r in stopped]
    return [
        f"In {scenario_of(table)}, early stopping (train.stop_at) ended {'; '.join(parts)}, at "
        "the first evaluated point at or below its level."
    ]


def _sweeps(table: Table) -> list[str]:
    out = []
    for base, (kept, labels) in kept_values(table).items():
        row = next(r for r in table.method_rows if r.method == kept)
        others = [label for label in labels if label != kept]
        out.append(
            f"Of {base}'s {len(labels)} swept values in {scenario_of(table)}, the report keeps "
            f"{kept}: the most retain accuracy at matched forgetting "
            f"({pct(row.value('matched_retain') or 0)}, against {', '.join(others)})."
        )
    return out


def _knowledge(tables: Sequence[Table]) -> list[str]:
    """Fine-tuned against pre-trained knowledge: each method's retain loss at matched
    forgetting in both scenarios."""
    by_kind = {t.kind: t for t in tables}
    finetuned, pretrained = by_kind.get("finetuned"), by_kind.get("pretrained")
    if finetuned is None or pretrained is None:
        return []
    parts = []
    for row in ok_rows(finetuned.method_rows):
        other = next((r for r in pretrained.method_rows if r.method == row.method), None)
        a, b = _loss(finetuned, row), _loss(pretrained, other) if other else None
        if a is not None and b is not None:
            parts.append(f"{row.method} {pts(a)} on fine-tuned, {pts(b)} on pre-trained")
    if not parts:
        return []
    return [
        "Retain accuracy lost at matched forgetting (before minus at the target): "
        + "; ".join(parts)
        + "."
    ]


def _loss(table: Table, row: TableRow | None) -> float | None:
    before = table.before
    if row is None or before is None:
        return None
    value, base = row.value("matched_retain"), before.value("end_retain")
    return None if value is None or base is None else base - value
