"""Table data in the paper's shape, built from result rows; no formatting for any medium here.

One builder serves every scenario kind: a table has one row per cell (method, setting, request)
plus the reference rows, ``before`` and (where the scenario has one) ``oracle``, which compete
with no method, and the kind only decides the columns, the name of the setting column
and which rows compete for "best": its :class:`Layout`, which each scenario registers
(:mod:`pulse.protocol.registry`). A metric that declares columns of its own
(:attr:`pulse.protocol.metrics.Metric.columns`) adds them to every table that measured it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pulse.protocol.cells import BEFORE, ORACLE, REFERENCES
from pulse.protocol.metrics import CONTRAST, GAP, lower_is_better, metrics
from pulse.protocol.metrics.chance import CHANCE
from pulse.protocol.registry import get_scenario, scenario_names
from pulse.protocol.results import ResultRow

STATUS_METRIC = "status"
MISSING = "missing"  # status of a placeholder row: a request the run never reported


@dataclass(frozen=True)
class Column:
    key: str
    group: str  # header shared by related columns ("Forget accuracy")
    label: str  # the column's own header ("multimodal")
    split: str
    metric: str
    modality: str | None = None  # None: any modality ("all" preferred)
    ranked: bool = True  # whether a best value is marked (its ideal is an end, not a middle)

    @property
    def lower_is_better(self) -> bool:
        return lower_is_better(self.metric, self.split)

    @property
    def title(self) -> str:
        return f"{self.group}, {self.label}"

    @property
    def arrow(self) -> str:
        """↓ lower is better, ↑ higher; none for a value whose ideal is a middle."""
        return arrow(self.lower_is_better if self.ranked else None)


def arrow(lower_is_better: bool | None) -> str:
    return "" if lower_is_better is None else "↓" if lower_is_better else "↑"


def mcq_columns(split: str, group: str) -> tuple[Column, Column]:
    """The multimodal and text-only accuracy columns of a split."""
    return (
        Column(f"{split}_multimodal", group, "multimodal", split, "accuracy", "multimodal"),
        Column(f"{split}_text", group, "text-only", split, "accuracy", "text"),
    )


GENERAL = Column("general", "General capability", "circular", "general", "circular")
MCQ_COLUMNS = (
    *mcq_columns("forget", "Forget accuracy"),
    *mcq_columns("retain", "Retain accuracy"),
    GENERAL,
)


@dataclass(frozen=True)
class Cell:
    value: float | None = None
    delta: float | None = None  # value minus the before row's value
    best: bool = False
    low: float | None = None  # the value's 95 % interval, when the run measured one
    high: float | None = None
    delta_low: float | None = None  # the delta's 95 % interval (paired against before)
    delta_high: float | None = None
    seeds: int = 1  # training seeds the value is the mean of
    seed_low: float | None = None  # the lowest and highest of those seeds' own values
    seed_high: float | None = None

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.low is None or self.high is None else (self.low, self.high)

    @property
    def delta_interval(self) -> tuple[float, float] | None:
        if self.delta_low is None or self.delta_high is None:
            return None
        return (self.delta_low, self.delta_high)

    @property
    def seed_range(self) -> tuple[float, float] | None:
        """The seeds' own values, lowest and highest, when the value pools several."""
        if self.seeds < 2 or self.seed_low is None or self.seed_high is None:
            return None
        return (self.seed_low, self.seed_high)

    @property
    def half_width(self) -> float | None:
        """Half the interval's width (``±`` in the tables)."""
        return None if self.interval is None else (self.interval[1] - self.interval[0]) / 2


@dataclass(frozen=True)
class TableRow:
    method: str
    setting: str
    request: int
    requests: int
    keys: tuple[str, ...]  # one per Table.header entry
    status: str = "ok"  # ok | diverged | failed | missing
    detail: str | None = None
    cells: dict[str, Cell] = field(default_factory=dict)

    @property
    def is_before(self) -> bool:
        return self.method == BEFORE

    @property
    def is_oracle(self) -> bool:
        return self.method == ORACLE

    @property
    def is_reference(self) -> bool:
        """Before or the oracle: a row to compare the methods with, not one of them."""
        return self.method in REFERENCES

    @property
    def label(self) -> str:
        return self.method if self.is_reference else " · ".join(k for k in self.keys if k)

    @property
    def variant(self) -> str:
        """What distinguishes the row from the method's other rows ("llm", "2/5", "batch")."""
        return " · ".join(k for k in self.keys[1:] if k)

    def value(self, key: str) -> float | None:
        cell = self.cells.get(key)
        return cell.value if cell else None

    def interval(self, key: str) -> tuple[float, float] | None:
        return self.cells.get(key, Cell()).interval

    def delta_interval(self, key: str) -> tuple[float, float] | None:
        """The 95 % interval of the change against before, when the run measured one."""
        return self.cells.get(key, Cell()).delta_interval


@dataclass(frozen=True)
class Table:
    scenario: str
    kind: str
    title: str
    header: tuple[str, ...]
    columns: tuple[Column, ...]
    rows: tuple[TableRow, ...]
    chance: float | None = None  # guessing accuracy on the forget items (a "chance" row)
    # Sequential scenario: request K minus the one-batch request, per (method, split,
    # modality), with the paired interval of the difference (``gap`` rows).
    batch_gaps: dict[tuple[str, str, str], Cell] = field(default_factory=dict)
    # Row against row on the same people and questions (``contrast`` rows), keyed by
    # (method, setting, versus, split, modality): the first minus the second (another method,
    # or another scope of the same method), with the difference's paired interval.
    contrasts: dict[tuple[str, str, str, str, str], Cell] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """The scenario's name made safe as a file name."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.scenario).strip("._") or "scenario"

    @property
    def before(self) -> TableRow | None:
        return next((r for r in self.rows if r.is_before), None)

    @property
    def oracle(self) -> TableRow | None:
        return next((r for r in self.rows if r.is_oracle), None)

    @property
    def method_rows(self) -> list[TableRow]:
        return [r for r in self.rows if not r.is_reference]

    @property
    def headline_rows(self) -> list[TableRow]:
        """One row per method and setting: the last request of a multi-request cell."""
        return [r for r in self.method_rows if r.request == r.requests or r.requests <= 1]

    @property
    def gap_columns(self) -> tuple[Column, ...]:
        """The columns the sequential-vs-batch gap is measured in (forget, retain, general:
        after the last request "forgotten so far" is the forget set)."""
        if not self.batch_gaps:
            return ()
        measured = {(split, modality) for _, split, modality in self.batch_gaps}
        return tuple(c for c in self.columns if (c.split, c.modality or "all") in measured)

    def gap(self, method: str, column: Column) -> Cell | None:
        """``method``'s gap in ``column``: request K minus the one-batch request."""
        return self.batch_gaps.get((method, column.split, column.modality or "all"))

    @property
    def gap_methods(self) -> list[str]:
        """The methods with a measured gap, in the table's order."""
        have = {method for method, _, _ in self.batch_gaps}
        return list(dict.fromkeys(r.method for r in self.method_rows if r.method in have))

    def contrast(self, row: TableRow, other: TableRow, column: Column) -> Cell | None:
        """``row`` minus ``other`` in ``column``, with the paired interval, when the run
        compared them (either order: the stored difference turned around when needed). Rows
        of one method differ by their setting (the scope ablation), else by their method."""
        modality = column.modality or "all"

        def stored(a: TableRow, b: TableRow) -> Cell | None:
            versus = b.setting if a.method == b.method else b.method
            return self.contrasts.get((a.method, a.setting, versus, column.split, modality))

        found = stored(row, other)
        if found is not None:
            return found
        reverse = stored(other, row)
        if reverse is None or reverse.value is None:
            return None
        bounds = reverse.interval
        low, high = (-bounds[1], -bounds[0]) if bounds else (None, None)
        return Cell(-reverse.value, low=low, high=high)

    @property
    def seed_counts(self) -> set[int]:
        """How many training seeds the table's values pool ({1} without repeats)."""
        return {c.seeds for row in self.rows for c in row.cells.values() if c.value is not None}

    def column(self, key: str) -> Column | None:
        return next((c for c in self.columns if c.key == key), None)

    def drop(self, row: TableRow, key: str) -> float | None:
        """Before minus ``row``'s value: how far the column fell (forgotten, or lost)."""
        before = self.before
        value, base = row.value(key), before.value(key) if before else None
        return None if value is None or base is None else base - value

    def has(self, *keys: str) -> bool:
        present = {c.key for c in self.columns}
        return all(k in present for k in keys)

    def column_groups(self) -> list[tuple[str, int, bool | None]]:
        """(group, span, lower is better: None where no end is better) for consecutive columns
        sharing a group header."""
        groups: list[tuple[str, int, bool | None]] = []
        for column in self.columns:
            if groups and groups[-1][0] == column.group:
                name, span, lower = groups[-1]
                groups[-1] = (name, span + 1, lower)
            else:
                lower = column.lower_is_better if column.ranked else None
                groups.append((column.group, 1, lower))
        return groups


@dataclass(frozen=True)
class Layout:
    """How a scenario's table looks: its title, columns (those nothing measured are dropped),
    the header of its setting column (None: the setting shows in the request column), the
    order of its settings, which rows compete for "best" and whether rows group by setting
    first (else by method)."""

    title: str
    columns: tuple[Column, ...] = MCQ_COLUMNS
    setting_header: str | None = "setting"
    setting_order: tuple[str, ...] = ()
    best_group: Callable[[TableRow], Any] = lambda row: None
    setting_first: bool = False


def layout_of(kind: str) -> Layout:
    """The layout the scenario type ``kind`` registered, with the columns of every metric
    that declares its own; an unknown kind (an older run's) gets the MCQ columns."""
    scenario = get_scenario(kind)
    layout = scenario.layout if scenario and scenario.layout else None
    layout = layout or Layout(scenario.name if scenario else kind)
    extra = tuple(
        Column(
            f"{m.name}_{d.split}_{d.modality or 'all'}",
            m.label,
            d.label,
            d.split,
            m.name,
            d.modality,
            m.ranked,
        )
        for m in metrics()
        for d in m.columns
    )
    return replace(layout, columns=layout.columns + extra) if extra else layout


def kind_order() -> list[str]:
    """Scenario kinds in the order their tables appear: the registry's."""
    return scenario_names()


def method_order(rows: Iterable[ResultRow]) -> list[str]:
    """Methods in order of first appearance, the reference rows (before, oracle) excluded (also
    fixes figure colours)."""
    return list(dict.fromkeys(r.method for r in rows if r.method not in REFERENCES))


def build_tables(rows: Sequence[ResultRow]) -> list[Table]:
    """One table per scenario, in the paper's order of scenario kinds."""
    by_scenario: dict[str, list[ResultRow]] = {}
    for row in rows:
        by_scenario.setdefault(row.scenario, []).append(row)
    methods = method_order(rows)

    order = kind_order()

    def rank(scenario: str) -> tuple[int, str]:
        kind = by_scenario[scenario][0].kind
        return (order.index(kind) if kind in order else len(order), scenario)

    return [
        build_table(scenario, by_scenario[scenario], methods)
        for scenario in sorted(by_scenario, key=rank)
    ]


def build_table(
    scenario: str,
    rows: Sequence[ResultRow],
    methods: Sequence[str],
    layout: Layout | None = None,
) -> Table:
    """The scenario's table from its cells' results (in its kind's layout, unless ``layout``
    gives another: its privacy table); the rows of single training seeds (a run with repeats)
    only give each pooled value its seeds' range."""
    kind = rows[0].kind
    layout = layout or layout_of(kind)
    per_seed = _cells([r for r in rows if not r.pooled])
    rows = [r for r in rows if r.pooled]
    cells = _cells(rows)

    # Columns nothing measured are dropped, so a table only shows what the run produced.
    measured = {(r.split, r.metric, r.modality) for r in rows}
    columns = tuple(
        c
        for c in layout.columns
        if any(
            s == c.split and m == c.metric and c.modality in (None, mod) for s, m, mod in measured
        )
    )
    header = _header(layout, cells)
    table_rows = [
        _table_row(layout, header, cell, group, columns, per_seed.get(cell, []))
        for cell, group in cells.items()
    ]
    table_rows += _missing_requests(layout, header, cells)
    table_rows.sort(key=_row_order(layout, methods))
    table_rows = _with_deltas_and_best(table_rows, columns, layout.best_group)
    title = layout.title if scenario == kind else f"{layout.title} ({scenario})"
    chance = next(
        (
            r.value
            for r in rows
            if r.method == BEFORE
            and r.split == "forget"
            and r.metric == CHANCE.name
            and r.modality == "all"
        ),
        None,
    )
    gaps = {
        (r.method, r.split, r.modality): replace(
            _seed_spread(r, per_seed.get(_cell_key(r), [])), value=r.value, low=r.low, high=r.high
        )
        for r in rows
        if r.metric == GAP.name and r.value is not None
    }
    contrasts = {
        (r.method, r.setting, r.versus, r.split, r.modality): Cell(r.value, low=r.low, high=r.high)
        for r in rows
        if r.metric == CONTRAST.name and r.value is not None and r.versus
    }
    return Table(scenario, kind, title, header, columns, tuple(table_rows), chance, gaps, contrasts)


_CellKey = tuple[str, str, int, int]  # method, setting, request, requests


def _cell_key(row: ResultRow) -> _CellKey:
    return (row.method, row.setting, row.request, row.requests)


def _cells(rows: Sequence[ResultRow]) -> dict[_CellKey, list[ResultRow]]:
    groups: dict[_CellKey, list[ResultRow]] = {}
    for row in rows:
        groups.setdefault(_cell_key(row), []).append(row)
    return groups


def _header(layout: Layout, cells: Iterable[_CellKey]) -> tuple[str, ...]:
    cells = list(cells)
    header = ["method"]
    if layout.setting_header and any(setting for _, setting, _, _ in cells):
        header.append(layout.setting_header)
    if any(requests > 1 for *_, requests in cells):
        header.append("request")
    return tuple(header)


def _keys(layout: Layout, header: tuple[str, ...], cell: _CellKey) -> tuple[str, ...]:
    method, setting, request, requests = cell
    keys = [method]
    if len(header) > 1 and header[1] != "request":
        keys.append(setting)
    if header[-1] == "request":
        if method in REFERENCES:
            keys.append("0")
        elif layout.setting_header is None and requests <= 1:
            keys.append(setting)  # the one-batch row of a sequential scenario
        else:
            keys.append(f"{request}/{requests}")
    return tuple(keys)


def _table_row(
    layout: Layout,
    header: tuple[str, ...],
    cell: _CellKey,
    rows: list[ResultRow],
    columns: Sequence[Column],
    seed_rows: Sequence[ResultRow] = (),
) -> TableRow:
    status_rows = [r for r in rows if r.metric == STATUS_METRIC or r.status != "ok"]
    status = status_rows[0].status if status_rows else "ok"
    detail = status_rows[0].detail if status_rows else None
    cells = {c.key: _measure(rows, c, seed_rows) for c in columns}
    return TableRow(*cell, _keys(layout, header, cell), status, detail, cells)


def _measure(rows: Sequence[ResultRow], column: Column, seed_rows: Sequence[ResultRow]) -> Cell:
    found = _matching(rows, column)
    if not found:
        return Cell()
    row = found[0]
    return replace(
        _seed_spread(row, seed_rows),
        value=row.value,
        low=row.low,
        high=row.high,
        delta_low=row.change_low,
        delta_high=row.change_high,
    )


def _matching(rows: Sequence[ResultRow], column: Column) -> list[ResultRow]:
    """The rows that measure ``column``, the pooled modality ("all") first."""
    found = [
        r
        for r in rows
        if r.split == column.split
        and r.metric == column.metric
        and r.value is not None
        and column.modality in (None, r.modality)
    ]
    found.sort(key=lambda r: r.modality != "all")
    return found


def _seed_spread(row: ResultRow, seed_rows: Sequence[ResultRow]) -> Cell:
    """A cell holding how many seeds ``row`` pools and the range of their own values."""
    values = [
        r.value
        for r in seed_rows
        if (r.split, r.modality, r.metric) == (row.split, row.modality, row.metric)
        and r.value is not None
    ]
    if row.seeds < 2 or not values:
        return Cell(seeds=row.seeds)
    return Cell(seeds=row.seeds, seed_low=min(values), seed_high=max(values))


def _missing_requests(
    layout: Layout, header: tuple[str, ...], cells: Iterable[_CellKey]
) -> list[TableRow]:
    """Placeholder rows for the requests of a multi-request cell that never reported."""
    seen: dict[tuple[str, str, int], set[int]] = {}
    for method, setting, request, requests in cells:
        if requests > 1 and method not in REFERENCES:
            seen.setdefault((method, setting, requests), set()).add(request)
    placeholders = []
    for (method, setting, requests), done in seen.items():
        for request in range(1, requests + 1):
            if request not in done:
                cell = (method, setting, request, requests)
                keys = _keys(layout, header, cell)
                placeholders.append(TableRow(*cell, keys, MISSING))
    return placeholders


def _row_order(layout: Layout, methods: Sequence[str]) -> Callable[[TableRow], tuple]:
    def key(row: TableRow) -> tuple:
        method_rank = methods.index(row.method) if row.method in methods else len(methods)
        setting_rank = (
            layout.setting_order.index(row.setting)
            if row.setting in layout.setting_order
            else len(layout.setting_order)
        )
        method_key = (method_rank, row.method)
        setting_key = (setting_rank, row.setting)
        # Before, then the oracle, then the methods.
        reference = 0 if row.is_before else 1 if row.is_oracle else 2
        if layout.setting_first:
            return (reference, *setting_key, *method_key, row.request)
        return (reference, *method_key, *setting_key, row.request)

    return key


def _with_deltas_and_best(
    rows: list[TableRow], columns: Sequence[Column], best_group: Callable[[TableRow], Any]
) -> list[TableRow]:
    before = next((r for r in rows if r.is_before), None)
    best: set[tuple[int, str]] = set()
    for column in columns:
        if not column.ranked:
            continue
        groups: dict[Any, list[tuple[int, float]]] = {}
        for index, row in enumerate(rows):
            value = row.value(column.key)
            if not row.is_reference and row.status == "ok" and value is not None:
                groups.setdefault(best_group(row), []).append((index, value))
        for members in groups.values():
            values = {v for _, v in members}
            if len(values) < 2:  # a lone row, or all equal: nothing stands out
                continue
            target = min(values) if column.lower_is_better else max(values)
            best.update((i, column.key) for i, v in members if v == target)

    updated = []
    for index, row in enumerate(rows):
        cells = {}
        for column in columns:
            value = row.value(column.key)
            base = before.value(column.key) if before and not row.is_before else None
            delta = value - base if value is not None and base is not None else None
            best_here = (index, column.key) in best
            cell = replace(row.cells.get(column.key, Cell()), delta=delta, best=best_here)
            if delta is None:
                # A column the before row lacks ("forgotten so far"): the change's interval
                # (against before on the same people) would stand beside no change.
                cell = replace(cell, delta_low=None, delta_high=None)
            cells[column.key] = cell
        updated.append(replace(row, cells=cells))
    return updated


GAP_CAPTION = (
    "Sequential against one batch: the last request's value minus the one-batch request's, in "
    "points, ± half the paired 95 % interval of the difference (the same people and questions "
    "in both states)."
)


def gap_text(cell: Cell | None) -> str:
    """``+5.1 ±9.2``: a gap in signed points with half its interval; ``–`` when unmeasured."""
    if cell is None or cell.value is None:
        return "–"
    return f"{signed_points(cell.value)} {plus_minus(cell)}".rstrip()


def signed_span(bounds: tuple[float, float]) -> str:
    """``-6.0 to +2.0``: an interval of fractions in signed points."""
    return " to ".join(signed_points(v) for v in bounds)


def percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}"


def plus_minus(cell: Cell) -> str:
    """``±h`` in points, h half the 95 % interval; empty without an interval."""
    half = cell.half_width
    return "" if half is None else f"±{half * 100:.1f}"


def signed_points(delta: float | None) -> str:
    if delta is None:
        return ""
    points = round(delta * 100, 1)
    return "0.0" if points == 0 else f"{points:+.1f}"
