"""Everything the report says, computed once; the Markdown and HTML renderers only lay it out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pulse.protocol.metrics import metrics
from pulse.report.figures import FigureFile, build_figures, figure_colours
from pulse.report.gaps import find_gaps
from pulse.report.matched import matched_reading, matched_tables
from pulse.report.privacy import privacy_reading, privacy_tables
from pulse.report.privacy_figure import privacy_figures
from pulse.report.reading import build_reading
from pulse.report.rundir import RunDir, load_run
from pulse.report.runinfo import RunInfo, build_run_info
from pulse.report.tables import Table, build_tables, method_order
from pulse.report.trajectory_figure import trajectory_figures

FIGURES_DIR = "figures"
TABLES_DIR = "tables"


def table_legend(tables: list[Table]) -> str:
    """How to read every table, said once above them: what the intervals of the metrics the
    tables show resample (each metric's own ``legend``)."""
    shown = {c.metric for t in tables for c in t.columns}
    resampled = "; ".join(m.legend for m in metrics() if m.legend and m.name in shown)
    return (
        "Accuracies in %; ± half their 95 % interval"
        + (f" ({resampled})" if resampled else "")
        + "; in parentheses the change against before, in points. Bold marks the best value of "
        "a column among rows that compete (same request, same target). ↓ lower is better, "
        "↑ higher is better."
    )


def seeds_legend(tables: list[Table]) -> str:
    """What the tables' values are when they pool several training seeds, or that they do
    not when each request was trained once."""
    counts = sorted(set().union(*(t.seed_counts for t in tables)) - {1})
    if not counts:
        return (
            " The intervals cover the questions asked, not the randomness of training: each "
            "request was trained once (a run's `repeats` trains it under several seeds)."
        )
    how_many = " or ".join(str(c) for c in counts)
    return (
        f" Values of unlearned models are the mean over {how_many} training seeds of the same "
        "request, and their ± covers the seeds as well as the questions (a bootstrap that "
        "draws both); the seeds' own lowest and highest values are in the CSV and the HTML "
        "tooltips."
    )


@dataclass(frozen=True)
class ReportContent:
    run: RunDir
    tables: list[Table]
    figures: list[FigureFile]
    reading: list[str]
    gaps: list[str]
    info: RunInfo

    @property
    def title(self) -> str:
        return f"pulse report: {self.run.path.resolve().name}"

    @property
    def complete(self) -> bool:
        return not self.gaps

    @property
    def legend(self) -> str:
        """How to read every table, said once above them."""
        return table_legend(self.tables) + seeds_legend(self.tables)


def build_content(run_dir: str | Path) -> ReportContent:
    run = load_run(run_dir)
    tables = build_tables(run.rows)
    methods = method_order(run.rows)
    # Each scenario's privacy table follows the others (its figure and sentences likewise).
    privacy = privacy_tables(run.rows, methods)
    # Each scenario evaluated along its requests: its table at matched forgetting, its paths.
    matched = matched_tables(run.rows, methods)
    config = run.config if isinstance(run.config, dict) else None
    figures = build_figures(tables, methods) + privacy_figures(privacy)
    figures += trajectory_figures(run.rows, run.points, figure_colours(methods))
    return ReportContent(
        run=run,
        tables=tables + matched + privacy,
        figures=figures,
        reading=build_reading(tables)
        + matched_reading(matched)
        + privacy_reading(tables, privacy, config),
        gaps=find_gaps(run, tables),
        info=build_run_info(run),
    )


def table_files(table: Table) -> tuple[str, str]:
    """The CSV and LaTeX paths of a table, relative to the run directory."""
    return f"{TABLES_DIR}/{table.slug}.csv", f"{TABLES_DIR}/{table.slug}.tex"
