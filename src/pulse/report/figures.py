"""The report's figures as PNG bytes, drawn from the tables.

matplotlib's object API only (no pyplot): no global figure state and no GUI backend, and fixed
style, sizes and PNG metadata, so the same tables always give the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from pulse.protocol.metrics import get_metric
from pulse.protocol.metrics.base import FORGET_SPLITS
from pulse.protocol.registry import scenario_types
from pulse.report.tables import Column, Table, TableRow

# A grouped bar: its value, its row's status, and optionally its (low, high) interval.
Bar = tuple[float | None, str] | tuple[float | None, str, tuple[float, float] | None]

DPI = 110
STYLE = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: the same glyphs on every machine
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
}
# Colour-blind-safe (Okabe-Ito), one per method in order of first appearance.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MODALITY_COLOURS = {"multimodal": "#0072B2", "text-only": "#E69F00"}
BEFORE_COLOUR = "#444444"
ORACLE_COLOUR = "#7B3294"  # outside the methods' palette
STATUS_COLOUR = "#b45309"
BATCH_OFFSET = 0.18  # the one-batch star sits just right of the last request, not on its dot
BAND_ALPHA = 0.13  # shaded 95 % intervals: visible, yet lines of other methods read through
ORACLE, CHANCE = "oracle", "chance"  # the gid of the artists that mark them (tests find them)


@dataclass(frozen=True)
class FigureFile:
    name: str  # file name under figures/
    title: str
    caption: str
    png: bytes


def figure_colours(methods: Sequence[str]) -> dict[str, str]:
    """One colour per method, in order of first appearance (the same in every figure)."""
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}


def build_figures(tables: Sequence[Table], methods: Sequence[str]) -> list[FigureFile]:
    colours = figure_colours(methods)
    figures: list[FigureFile] = []
    with matplotlib.rc_context(STYLE):
        for table in tables:
            if any(r.requests > 1 for r in table.method_rows):
                figures.append(_sustainability(table, colours))
        for table in tables:
            tradeoff = _tradeoff(table, colours)
            if tradeoff:
                figures.append(tradeoff)
        figure = _modality_gap(tables)
        if figure:
            figures.append(figure)
        # Then each scenario's own figures, in the registry's order.
        for scenario in scenario_types():
            if scenario.figures:
                figures += scenario.figures(tables, colours)
    return figures


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No "Software" text chunk: it carries matplotlib's version and would change the bytes.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def figure_pct(value: float | None) -> float | None:
    return None if value is None else value * 100


def _arrow(column: Column) -> str:
    return "↓" if column.lower_is_better else "↑"


def _grid(count: int, max_cols: int, width: float, height: float) -> tuple[Figure, list[Axes]]:
    cols = min(max_cols, count)
    rows = math.ceil(count / cols)
    fig = Figure(figsize=(width * cols, height * rows + 0.5), layout="constrained")
    axes = list(fig.subplots(rows, cols, squeeze=False).flat)
    for extra in axes[count:]:
        extra.set_visible(False)
    return fig, axes[:count]


def _interval(row: TableRow, key: str) -> tuple[float, float] | None:
    """A value's 95 % interval in percent, when the run measured one."""
    bounds = row.interval(key)
    return None if bounds is None else (bounds[0] * 100, bounds[1] * 100)


def _error(value: float, bounds: tuple[float, float] | None) -> list[list[float]] | None:
    """matplotlib's asymmetric error bar (below, above) around ``value``."""
    return None if bounds is None else [[value - bounds[0]], [bounds[1] - value]]


def _sustainability(table: Table, colours: dict[str, str]) -> FigureFile:
    return FigureFile(
        f"sustainability_{table.slug}.png",
        f"Sustainability: {table.scenario}",
        "Accuracy and general capability after each request, one line per method, shaded over "
        "its 95 % intervals where the run measured them; the star is the same forget data "
        "unlearned in one batch, with its interval as a bar. Where the run has an oracle, its "
        "accuracy is the dashed line; the dotted line in the forget panels is guessing.",
        png(sustainability_figure(table, colours)),
    )


def sustainability_figure(table: Table, colours: dict[str, str]) -> Figure:
    # Accuracy and general capability; the values versus the oracle are in the tables (the
    # oracle's own accuracy is a dashed line in each panel, guessing a dotted one in those of
    # the people unlearned or to be).
    columns = [c for c in table.columns if not _versus_oracle(c)]
    fig, axes = _grid(len(columns), 4, 2.9, 2.4)
    before = table.before
    last = max(r.requests for r in table.method_rows)
    for ax, column in zip(axes, columns, strict=True):
        base = figure_pct(before.value(column.key)) if before else None
        oracle = table.oracle.value(column.key) if table.oracle else None
        if oracle is not None:
            ax.axhline(
                figure_pct(oracle), color=ORACLE_COLOUR, linestyle="--", linewidth=0.9, gid=ORACLE
            )
        if table.chance is not None and _forget_type(column):
            ax.axhline(
                figure_pct(table.chance), color="grey", linestyle=":", linewidth=0.9, gid=CHANCE
            )
        for method, colour in colours.items():
            steps = sorted(
                (r.request, figure_pct(r.value(column.key)), _interval(r, column.key))
                for r in table.method_rows
                if r.method == method and r.requests > 1 and r.value(column.key) is not None
            )
            if base is not None and steps:
                assert before is not None
                steps.insert(0, (0, base, _interval(before, column.key)))
            if steps:
                xs, ys, bounds = zip(*steps, strict=True)
                ax.plot(xs, ys, marker="o", markersize=3.5, color=colour, linewidth=1.4)
                if all(b is not None for b in bounds):
                    lows, highs = zip(*bounds, strict=True)
                    ax.fill_between(xs, lows, highs, color=colour, alpha=BAND_ALPHA, linewidth=0)
            for row in table.method_rows:
                if row.method == method and row.requests <= 1 and row.value(column.key) is not None:
                    value = figure_pct(row.value(column.key))
                    error = _error(value, _interval(row, column.key))
                    if error is not None:
                        ax.errorbar(
                            [last + BATCH_OFFSET],
                            [value],
                            yerr=error,
                            fmt="none",
                            ecolor=colour,
                            elinewidth=0.9,
                            capsize=2,
                        )
                    ax.plot(
                        [last + BATCH_OFFSET],
                        [value],
                        marker="*",
                        markersize=11,
                        color=colour,
                        markeredgecolor="black",
                        markeredgewidth=0.5,
                        linestyle="",
                    )
        ax.set_title(f"{column.group} {_arrow(column)}\n{column.label}")
        ax.set_xticks(range(last + 1))
        ax.set_xlim(-0.3, last + 0.5)
        ax.set_xlabel("request")
        ax.set_ylim(-3, 103)
        ax.set_ylabel("%")
    present = _plotted_methods(table, colours)
    handles = [Line2D([], [], color=colours[m], marker="o", markersize=3.5) for m in present]
    handles.append(
        Line2D([], [], color="grey", marker="*", markersize=11, linestyle="", markeredgecolor="k")
    )
    labels = [*present, "one batch (same data)"]
    if table.oracle is not None:
        handles.append(Line2D([], [], color=ORACLE_COLOUR, linestyle="--"))
        labels.append("oracle")
    if table.chance is not None and any(_forget_type(c) for c in columns):
        handles.append(Line2D([], [], color="grey", linestyle=":"))
        labels.append("chance (forget)")
    fig.legend(handles, labels, loc="outside lower center", ncols=6)
    fig.suptitle(f"{table.scenario}: after each request (0 = before)", fontsize=10)
    return fig


def _tradeoff(table: Table, colours: dict[str, str]) -> FigureFile | None:
    fig = tradeoff_figure(table, colours)
    if fig is None:
        return None
    return FigureFile(
        f"tradeoff_{table.slug}.png",
        f"Trade-off: {table.scenario}",
        "Forget accuracy against retain accuracy, per modality, with their 95 % intervals as "
        "bars where the run measured them; the top-left corner is the goal (forgotten, and "
        "the rest kept). Where the run has an oracle (a model trained without the forget "
        "set), its mark is where exact unlearning lands and the dashed line its forget "
        "accuracy (left of it: over-forgotten); the dotted line is guessing.",
        png(fig),
    )


def tradeoff_figure(table: Table, colours: dict[str, str]) -> Figure | None:
    panels = [
        (label, f"forget_{key}", f"retain_{key}")
        for label, key in (("multimodal", "multimodal"), ("text-only", "text"))
        if table.has(f"forget_{key}", f"retain_{key}")
    ]
    if not panels or not table.method_rows:
        return None
    fig, axes = _grid(len(panels), 2, 3.6, 3.2)
    chained = any(r.requests > 1 for r in table.method_rows)
    for ax, (label, forget, retain) in zip(axes, panels, strict=True):
        points = [
            r
            for r in table.rows
            if r.status == "ok" and r.value(forget) is not None and r.value(retain) is not None
        ]
        for run in _request_runs(points):  # a method's successive requests, joined
            ax.plot(
                [figure_pct(r.value(forget)) for r in run],
                [figure_pct(r.value(retain)) for r in run],
                color=colours.get(run[0].method, BEFORE_COLOUR),
                linewidth=0.8,
                alpha=0.6,
            )
        if table.chance is not None:
            # Guessing: a forget accuracy left of this line is below what no knowledge gives.
            ax.axvline(
                figure_pct(table.chance), color="grey", linestyle=":", linewidth=0.9, gid=CHANCE
            )
        target = table.oracle.value(forget) if table.oracle else None
        if target is not None:
            # Exact unlearning's forget accuracy: left of this line a state over-forgets.
            ax.axvline(
                figure_pct(target), color=ORACLE_COLOUR, linestyle="--", linewidth=0.8, gid=ORACLE
            )
        for row in points:
            colour = _reference_colour(row) or colours.get(row.method, BEFORE_COLOUR)
            x, y = figure_pct(row.value(forget)), figure_pct(row.value(retain))
            batch = chained and row.requests <= 1 and not row.is_reference
            marker = "D" if row.is_before else "P" if row.is_oracle else "*" if batch else "o"
            # Intervals on the rows a reader compares (before, the oracle, each method's last
            # request); on every intermediate request they would bury the path.
            if row.request == row.requests or row.is_reference:
                xerr = _error(x, _interval(row, forget))
                yerr = _error(y, _interval(row, retain))
                if xerr is not None or yerr is not None:
                    ax.errorbar(
                        [x],
                        [y],
                        xerr=xerr,
                        yerr=yerr,
                        fmt="none",
                        ecolor=colour,
                        elinewidth=0.7,
                        alpha=0.55,
                    )
            ax.plot(
                [x],
                [y],
                gid=ORACLE if row.is_oracle else None,
                marker=marker,
                markersize=10 if batch else 8 if row.is_oracle else 6,
                color=colour,
                markeredgecolor="black" if batch else colour,
                markeredgewidth=0.5,
                linestyle="",
            )
            # Intermediate requests stay unlabelled: the joining line shows their order.
            if row.variant and not row.is_reference and row.request == row.requests:
                ax.annotate(
                    row.variant,
                    (x, y),
                    xytext=(5, -9) if batch else (5, 3),
                    textcoords="offset points",
                    fontsize=6.5,
                    color=colour,
                )
        ax.set_xlim(-3, 103)
        ax.set_ylim(-3, 103)
        ax.set_xlabel("forget accuracy % (lower is better)")
        ax.set_ylabel("retain accuracy % (higher is better)")
        ax.set_title(label)
        ax.text(2, 98, "better", ha="left", va="top", fontsize=7, color="grey", style="italic")
    present = _plotted_methods(table, colours)
    handles = [Line2D([], [], color=BEFORE_COLOUR, marker="D", linestyle="")]
    labels = ["before"]
    if table.oracle is not None:
        handles.append(Line2D([], [], color=ORACLE_COLOUR, marker="P", linestyle="--"))
        labels.append("oracle")
    handles += [Line2D([], [], color=colours[m], marker="o", linestyle="") for m in present]
    labels += present
    if table.chance is not None:
        handles.append(Line2D([], [], color="grey", linestyle=":"))
        labels.append("chance (forget)")
    if chained:
        handles.append(
            Line2D(
                [],
                [],
                color="grey",
                marker="*",
                markersize=10,
                linestyle="",
                markeredgecolor="black",
            )
        )
        labels.append("one batch (same data)")
    fig.legend(handles, labels, loc="outside lower center", ncols=6)
    fig.suptitle(f"{table.scenario}: forgetting against retention", fontsize=10)
    return fig


def _forget_type(column: Column) -> bool:
    """An accuracy column on people unlearned, or to be (guessing is their floor)."""
    return column.metric == "accuracy" and column.split in FORGET_SPLITS | {"pending"}


def _versus_oracle(column: Column) -> bool:
    metric = get_metric(column.metric)
    return metric is not None and metric.versus_oracle


def _reference_colour(row: TableRow) -> str | None:
    return BEFORE_COLOUR if row.is_before else ORACLE_COLOUR if row.is_oracle else None


def _plotted_methods(table: Table, colours: dict[str, str]) -> list[str]:
    """Methods with at least one measured row (one that only diverged has no mark to name)."""
    return [
        m for m in colours if any(r.method == m and r.status == "ok" for r in table.method_rows)
    ]


def _request_runs(rows: Sequence[TableRow]) -> list[list[TableRow]]:
    runs: dict[tuple[str, str], list[TableRow]] = {}
    for row in rows:
        if row.requests > 1 and not row.is_reference:
            runs.setdefault((row.method, row.setting), []).append(row)
    return [sorted(run, key=lambda r: r.request) for run in runs.values() if len(run) > 1]


def _forget_drops(table: Table) -> list[tuple[TableRow, float | None, float | None]]:
    """(row, multimodal drop, text-only drop) in points; higher means more forgotten. The
    oracle comes first where the run has one: how far exact unlearning takes each modality."""
    rows = ([table.oracle] if table.oracle else []) + table.headline_rows
    return [
        (
            row,
            figure_pct(table.drop(row, "forget_multimodal")),
            figure_pct(table.drop(row, "forget_text")),
        )
        for row in rows
    ]


def bars(
    ax: Axes,
    labels: Sequence[str],
    series: dict[str, list[Bar]],
    colours: dict[str, str],
) -> None:
    """Grouped bars: per series, one ``(value, row status)`` or ``(value, row status, (low,
    high))`` per label, the interval drawn as an error bar. A bar with no value shows its
    status instead (diverged, failed, missing), so an absent bar is never read as zero."""
    width = 0.8 / max(len(series), 1)
    groups = list(zip(*series.values(), strict=True))
    for i, (name, entries) in enumerate(series.items()):
        for x, (value, status, *interval) in enumerate(entries):
            whole_group = all(entry[0] is None for entry in groups[x])
            position = x if whole_group else x + (i - (len(series) - 1) / 2) * width
            if value is not None:
                bounds = interval[0] if interval else None
                error = (
                    [[max(0.0, value - bounds[0])], [max(0.0, bounds[1] - value)]]
                    if bounds is not None
                    else None
                )
                ax.bar(position, value, width=width, color=colours[name], yerr=error, capsize=2)
            elif status and not (whole_group and i > 0):  # a group's shared status once
                ax.text(
                    position,
                    0,
                    f" {status}",
                    ha="center",
                    va="bottom",
                    rotation=90,
                    fontsize=7.5,
                    color=STATUS_COLOUR,
                )
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.axhline(0, color="black", linewidth=0.6)


def bar_legend(fig: Figure, colours: dict[str, str]) -> None:
    handles = [Line2D([], [], color=c, linewidth=6) for c in colours.values()]
    fig.legend(handles, list(colours), loc="outside lower center", ncols=len(colours))


def _modality_gap(tables: Sequence[Table]) -> FigureFile | None:
    fig = modality_gap_figure(tables)
    if fig is None:
        return None
    return FigureFile(
        "modality_gap.png",
        "Modality gap",
        "Drop in forget accuracy from before to after unlearning, multimodal against text-only "
        "questions about the same people (a taller multimodal bar: the image path broke more "
        "than the knowledge); where the run has an oracle, its own drop comes first: how far "
        "exact unlearning goes.",
        png(fig),
    )


def modality_gap_figure(tables: Sequence[Table]) -> Figure | None:
    eligible = [
        t
        for t in tables
        if t.has("forget_multimodal", "forget_text") and t.before and t.method_rows
    ]
    if not eligible:
        return None
    fig, axes = _grid(len(eligible), 3, 3.4, 3.0)
    for ax, table in zip(axes, eligible, strict=True):
        drops = _forget_drops(table)
        bars(
            ax,
            [row.label for row, _, _ in drops],
            {
                "multimodal": [(m, row.status) for row, m, _ in drops],
                "text-only": [(t, row.status) for row, _, t in drops],
            },
            MODALITY_COLOURS,
        )
        ax.set_title(table.scenario)
        ax.set_ylabel("forget accuracy drop (points)")
    bar_legend(fig, MODALITY_COLOURS)
    fig.suptitle("Modality gap: how far forget accuracy fell, per modality", fontsize=10)
    return fig
