"""The privacy figure of a scenario: membership-inference AUC per state and score, each
modality beside the oracle's level."""

from __future__ import annotations

from collections.abc import Sequence

from pulse.eval.membership import SCORES
from pulse.protocol.metrics.mia_auc import SCORE_LABELS
from pulse.report.figures import MODALITY_COLOURS, Bar, FigureFile, bars, png
from pulse.report.privacy import MODALITIES, scenario_of
from pulse.report.tables import Table, TableRow


def _states(table: Table) -> list[TableRow]:
    """Before and each method's last request (the oracle is drawn as a level, not a bar)."""
    return [r for r in (table.before, *table.headline_rows) if r is not None]


def _bar(row: TableRow, key: str) -> Bar:
    """One state's AUC in percent, with its interval."""
    value = row.value(key) if row.status == "ok" else None
    if value is None:
        return (None, row.status if row.status != "ok" else "")
    bounds = row.interval(key)
    return (value * 100, row.status, (bounds[0] * 100, bounds[1] * 100) if bounds else None)


def privacy_figure(table: Table) -> FigureFile | None:
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    states = _states(table)
    if not states:
        return None
    fig = Figure(figsize=(max(7.5, 1.9 * len(SCORES)), 3.3), layout="constrained")
    axes = fig.subplots(1, len(SCORES), sharey=True)
    for ax, score in zip(axes, SCORES, strict=True):
        series = {
            label: [_bar(row, f"mia_auc_{score}_{modality}") for row in states]
            for modality, label in MODALITIES
        }
        bars(ax, [r.label for r in states], series, MODALITY_COLOURS)
        for modality, label in MODALITIES:
            key = f"mia_auc_{score}_{modality}"
            level = table.oracle.value(key) if table.oracle else None
            if level is not None:
                ax.axhline(
                    level * 100, color=MODALITY_COLOURS[label], linestyle="--", linewidth=1.1
                )
        ax.axhline(50, color="#888888", linestyle=":", linewidth=1)
        ax.set_title(SCORE_LABELS[score])
        ax.set_ylim(0, 100)
    axes[0].set_ylabel("membership AUC (%)")
    legend = [Patch(color=MODALITY_COLOURS[label], label=label) for _, label in MODALITIES]
    legend += [
        Line2D([], [], color="#444444", linestyle="--", label="oracle's level"),
        Line2D([], [], color="#888888", linestyle=":", label="chance (50)"),
    ]
    fig.legend(handles=legend, loc="outside lower center", ncols=len(legend))
    scenario = scenario_of(table)
    fig.suptitle(f"Membership inference per state ({scenario})")
    oracle = (
        "dashed lines: the oracle's AUC (a model never trained on the forget set; PrivLeak "
        "is 0 there): a bar above its line still leaks membership, below it is over-unlearned"
        if table.oracle
        else "no oracle in this scenario, so no oracle's level"
    )
    return FigureFile(
        f"privacy_{table.slug}.png",
        f"Membership inference: {scenario}",
        "Membership-inference AUC (%) of forget pairs (members) against holdout pairs "
        "(non-members) per state and score, multimodal and text-only, with 95 % intervals "
        f"(a bootstrap over people); {oracle}; dotted: chance.",
        png(fig),
    )


def privacy_figures(tables: Sequence[Table]) -> list[FigureFile]:
    import matplotlib

    from pulse.report.figures import STYLE

    with matplotlib.rc_context(STYLE):
        return [f for t in tables if (f := privacy_figure(t)) is not None]
