"""The robustness figure: per attacked scenario, how much each attack changed the forget
people's accuracy of every state (the attacked state minus the same state unattacked, with
its paired 95 % interval), beside ``before`` and the oracle under the same attack."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

from pulse.report.figures import (
    BEFORE_COLOUR,
    ORACLE_COLOUR,
    STYLE,
    Bar,
    FigureFile,
    _grid,
    bar_legend,
    bars,
    png,
)
from pulse.report.tables import Table

SPLITS = (("forget", "forget"), ("relearned", "relearned half"), ("held_back", "held-back half"))


def robustness_figures(tables: Sequence[Table], colours: dict[str, str]) -> list[FigureFile]:
    from pulse.protocol.scenarios.robustness import NAME

    figures = []
    for table in tables:
        if table.kind != NAME:  # the hook sees every table; only attacked states have bars
            continue
        figure = robustness_figure(table, colours)
        if figure is not None:
            figures.append(figure)
    return figures


def robustness_figure(table: Table, colours: dict[str, str]) -> FigureFile | None:
    from pulse.protocol.scenarios.robustness import CHANGE, UNATTACKED

    settings = [s for s in dict.fromkeys(r.setting for r in table.rows) if UNATTACKED not in s]
    if not settings:
        return None
    palette = {"before": BEFORE_COLOUR, "oracle": ORACLE_COLOUR, **colours}
    palette = {m: c for m, c in palette.items() if any(r.method == m for r in table.rows)}
    with matplotlib.rc_context(STYLE):
        fig, axes = _grid(len(SPLITS), 3, 4.2, 3.2)
        for ax, (split, label) in zip(axes, SPLITS, strict=True):
            key = f"{CHANGE.name}_{split}"
            series = {
                method: [_bar(table, method, setting, key) for setting in settings]
                for method in palette
            }
            bars(ax, settings, series, palette)
            ax.set_title(f"{label}: change under the attack")
            ax.set_ylabel("accuracy change (points)")
        bar_legend(fig, palette)
        data = png(fig)
    return FigureFile(
        f"robustness_{table.scenario}.png",
        "Robustness to attacks",
        "Each attack's change in accuracy on the forget people (whole forget set; the "
        "relearned half; the held-back half), per state, against the same state unattacked, "
        "with paired 95 % intervals. A method's bar well above the oracle's is knowledge the "
        "attack brought back that a model never trained on it does not pick up: hidden, not "
        "removed.",
        data,
    )


def _bar(table: Table, method: str, setting: str, key: str) -> Bar:
    """One state's change under one attack, in points, with its paired interval."""
    row = next((r for r in table.rows if r.method == method and r.setting == setting), None)
    if row is None:
        return (None, "")
    cell = row.cells.get(key)
    if cell is None or cell.value is None:
        return (None, row.status if row.status != "ok" else "")
    interval = cell.interval
    return (
        cell.value * 100,
        row.status,
        (interval[0] * 100, interval[1] * 100) if interval is not None else None,
    )
