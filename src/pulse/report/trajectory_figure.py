"""Trajectory figures: each method's path along its request (``train.eval_every``), forget
accuracy against retain accuracy and against general capability, with before, the oracle and
chance marked and where each path reached the matched-forgetting target."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import matplotlib
import numpy as np
from matplotlib.lines import Line2D

from pulse.protocol.cells import BEFORE, ORACLE
from pulse.protocol.results import ResultRow
from pulse.protocol.trajectory import MATCHED
from pulse.report.figures import (
    BEFORE_COLOUR,
    CHANCE,
    ORACLE_COLOUR,
    STYLE,
    FigureFile,
    _grid,
    figure_pct,
    png,
)
from pulse.report.figures import ORACLE as ORACLE_GID

LINES = ("-", "--", ":", "-.")
PANELS = (
    ("retain", "accuracy", "retain accuracy % (higher is better)"),
    ("general", "circular", "general capability % (circular, higher is better)"),
)


def _value(rows: Sequence[ResultRow], split: str, metric: str) -> float | None:
    for row in rows:
        if row.split == split and row.metric == metric and row.modality == "all":
            return row.value
    return None


Path = dict[float, list[ResultRow]]  # a path's rows by step


def trajectory_figures(
    rows: Sequence[ResultRow], points: Sequence[ResultRow], colours: dict[str, str]
) -> list[FigureFile]:
    """One figure per scenario with points along its requests: each cell's path, and with
    training seeds each seed's path beside it."""
    with matplotlib.rc_context(STYLE):
        return _figures(rows, points, colours)


def paths_of(
    points: Sequence[ResultRow],
) -> tuple[dict[tuple[str, str], Path], dict[tuple[str, str], list[Path]]]:
    """Per (method, setting): the cell's path (its pooled rows; without them, the mean of its
    training seeds' at the steps they share) and, under several seeds, every seed's path."""
    pooled: dict[tuple[str, str], Path] = {}
    seeds: dict[tuple[str, str], dict[int, Path]] = {}
    for row in points:
        cell = (row.method, row.setting)
        if row.pooled:
            pooled.setdefault(cell, {}).setdefault(row.step or 0, []).append(row)
        else:
            by_seed = seeds.setdefault(cell, {}).setdefault(row.repeat, {})
            by_seed.setdefault(row.step or 0, []).append(row)
    several = {cell: [s[k] for k in sorted(s)] for cell, s in seeds.items() if len(s) > 1}
    cells = {cell: by_seed[min(by_seed)] for cell, by_seed in seeds.items()}
    cells.update({cell: _mean_path(paths) for cell, paths in several.items()})
    cells.update(pooled)
    return cells, several


def _mean_path(paths: list[Path]) -> Path:
    """The seeds' mean at each step every seed has, per split, metric and modality."""
    out: Path = {}
    for step in sorted(set.intersection(*(set(p) for p in paths))):
        groups: dict[tuple[str, str, str], list[ResultRow]] = {}
        for path in paths:
            for row in path[step]:
                groups.setdefault((row.split, row.metric, row.modality), []).append(row)
        out[step] = [
            replace(rows[0], value=float(np.mean([r.value for r in rows])), repeat=None)
            for rows in groups.values()
            if len(rows) == len(paths) and all(r.value is not None for r in rows)
        ]
    return out


def _figures(
    rows: Sequence[ResultRow], points: Sequence[ResultRow], colours: dict[str, str]
) -> list[FigureFile]:
    by_scenario: dict[str, list[ResultRow]] = {}
    for row in points:
        by_scenario.setdefault(row.scenario, []).append(row)
    figures = []
    for scenario, own in by_scenario.items():
        figure = _figure(scenario, own, [r for r in rows if r.scenario == scenario], colours)
        if figure is not None:
            figures.append(figure)
    return figures


def _figure(
    scenario: str,
    points: Sequence[ResultRow],
    rows: Sequence[ResultRow],
    colours: dict[str, str],
) -> FigureFile | None:
    paths, seed_paths = paths_of(points)
    panels = [
        p
        for p in PANELS
        if any(_value(r, p[0], p[1]) is not None for path in paths.values() for r in path.values())
    ]
    if not panels:
        return None
    fig, axes = _grid(len(panels), 2, 3.8, 3.3)
    # A scenario's settings (sequential against batch, the scope ablation's scopes) apart by
    # line style, its methods by colour.
    settings = list(dict.fromkeys(setting for _, setting in paths))
    styles = {setting: LINES[i % len(LINES)] for i, setting in enumerate(settings)}
    references = {
        method: [r for r in rows if r.method == method and r.pooled and r.step is None]
        for method in (BEFORE, ORACLE)
    }
    chance = next(
        (
            r.value
            for r in rows
            if r.method == BEFORE
            and r.split == "forget"
            and r.metric == "chance"
            and r.modality == "all"
        ),
        None,
    )
    crossings = {
        (r.method, r.setting, r.split): r
        for r in rows
        if r.metric == MATCHED and r.step is not None and r.value is not None
    }
    for ax, (split, metric, label) in zip(axes, panels, strict=True):
        # Each training seed's own path, thin, under the cell's.
        for (method, setting), seed_list in seed_paths.items():
            for path in seed_list:
                kept = _xy(path, split, metric)
                if kept:
                    ax.plot(
                        *zip(*kept, strict=True),
                        color=colours.get(method, BEFORE_COLOUR),
                        linewidth=0.6,
                        alpha=0.45,
                        linestyle=styles[setting],
                    )
        for (method, setting), path in paths.items():
            steps = sorted(path)
            kept = _xy(path, split, metric)
            if not kept:
                continue
            colour = colours.get(method, BEFORE_COLOUR)
            ax.plot(
                *zip(*kept, strict=True),
                color=colour,
                marker="o",
                markersize=3.5,
                linewidth=1,
                linestyle=styles[setting],
            )
            target = crossings.get((method, setting, "forget"))
            there = crossings.get((method, setting, split))
            if target is not None and there is not None and target.step is not None:
                # On the path where it reached the target (a path that starts below the
                # target reaches it at its first point, not on the target).
                forget = [(s, _value(path[s], "forget", "accuracy")) for s in steps]
                known = [(s, v) for s, v in forget if v is not None]
                x = float(np.interp(target.step, *zip(*known, strict=True)))
                ax.plot(
                    [figure_pct(x)],
                    [figure_pct(there.value)],
                    marker="X",
                    markersize=8,
                    color=colour,
                    markeredgecolor="black",
                    markeredgewidth=0.5,
                    linestyle="",
                )
        before = references[BEFORE]
        x, y = _value(before, "forget", "accuracy"), _value(before, split, metric)
        if x is not None and y is not None:
            ax.plot([figure_pct(x)], [figure_pct(y)], marker="D", color=BEFORE_COLOUR, linestyle="")
        oracle = references[ORACLE]
        x, y = _value(oracle, "forget", "accuracy"), _value(oracle, split, metric)
        if x is not None:
            ax.axvline(
                figure_pct(x), color=ORACLE_COLOUR, linestyle="--", linewidth=0.8, gid=ORACLE_GID
            )
            if y is not None:
                ax.plot(
                    [figure_pct(x)],
                    [figure_pct(y)],
                    marker="P",
                    markersize=8,
                    color=ORACLE_COLOUR,
                    linestyle="",
                )
        if chance is not None:
            ax.axvline(figure_pct(chance), color="grey", linestyle=":", linewidth=0.9, gid=CHANCE)
        ax.set_xlim(-3, 103)
        ax.set_ylim(-3, 103)
        ax.set_xlabel("forget accuracy % (lower is better)")
        ax.set_ylabel(label)
    methods = list(dict.fromkeys(method for method, _ in paths))
    handles = [Line2D([], [], color=BEFORE_COLOUR, marker="D", linestyle="")]
    labels = ["before"]
    if references[ORACLE]:
        handles.append(Line2D([], [], color=ORACLE_COLOUR, marker="P", linestyle="--"))
        labels.append("oracle")
    if chance is not None:
        handles.append(Line2D([], [], color="grey", linestyle=":"))
        labels.append("chance (forget)")
    handles += [Line2D([], [], color=colours.get(m, BEFORE_COLOUR), marker="o") for m in methods]
    labels += methods
    if len(settings) > 1:
        handles += [Line2D([], [], color="grey", linestyle=styles[s]) for s in settings]
        labels += [s or "(none)" for s in settings]
    handles.append(Line2D([], [], color="grey", marker="X", markeredgecolor="black", linestyle=""))
    labels.append("at the target")
    fig.legend(handles, labels, loc="outside lower center", ncols=4)
    fig.suptitle(f"{scenario}: along each request", fontsize=10)
    return FigureFile(
        f"trajectory_{_slug(scenario)}.png",
        f"Trajectories: {scenario}",
        "Each method's path along its request (points every train.eval_every, from before to "
        "its last step; with training seeds, their mean, and each seed's path as a thin line): "
        "forget accuracy against retain accuracy and, where measured, general "
        "capability (all modalities pooled). The cross is where the path first reaches the "
        "matched-forgetting target (interpolated between points); the dashed line is the "
        "oracle's forget accuracy, the dotted line guessing.",
        png(fig),
    )


def _xy(path: Path, split: str, metric: str) -> list[tuple[float, float]]:
    """(forget accuracy, the panel's value) in % at each step of ``path`` where both exist."""
    steps = sorted(path)
    xs = [figure_pct(_value(path[s], "forget", "accuracy")) for s in steps]
    ys = [figure_pct(_value(path[s], split, metric)) for s in steps]
    return [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None]


def _slug(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "scenario"
