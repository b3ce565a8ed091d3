"""The run report: tables, figures, an automatic reading and the run's facts, written into the
run directory as Markdown, self-contained HTML, PNG, CSV and LaTeX.

``write_report(run_dir)`` never fails on a partial run: what is missing is part of the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.table import Table as RichTable

from pulse.files import write_bytes, write_text
from pulse.report.content import FIGURES_DIR, TABLES_DIR, build_content, table_files
from pulse.report.exports import table_csv, table_latex
from pulse.report.gaps import find_gaps
from pulse.report.html import render_html
from pulse.report.markdown import render_markdown
from pulse.report.rundir import load_run
from pulse.report.tables import build_tables
from pulse.report.terminal import render_headline

__all__ = ["ReportFiles", "headline_table", "write_report"]

MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    figures: list[Path]
    tables: list[Path]

    @property
    def all(self) -> list[Path]:
        return [*self.figures, *self.tables, self.markdown, self.html]


def write_report(run_dir: str | Path) -> ReportFiles:
    """Write the report into ``run_dir``; report.html is written last, so its presence says the
    report is complete (every file is written atomically)."""
    run_dir = Path(run_dir)
    content = build_content(run_dir)
    figures = [write_bytes(run_dir / FIGURES_DIR / f.name, f.png) for f in content.figures]
    tables = []
    for table in content.tables:
        csv_path, tex_path = table_files(table)
        tables.append(write_text(run_dir / csv_path, table_csv(table)))
        tables.append(write_text(run_dir / tex_path, table_latex(table)))
    _remove_stale(run_dir / FIGURES_DIR, figures, "*.png")
    _remove_stale(run_dir / TABLES_DIR, tables, "*.csv", "*.tex")
    markdown = write_text(run_dir / MARKDOWN_FILE, render_markdown(content))
    html = write_text(run_dir / HTML_FILE, render_html(content))
    return ReportFiles(markdown, html, figures, tables)


def _remove_stale(folder: Path, keep: list[Path], *patterns: str) -> None:
    """A figure or table from an earlier report that no longer applies (a scenario renamed,
    a plot with nothing to show) would otherwise sit next to the new ones and mislead."""
    kept = {p.resolve() for p in keep}
    for pattern in patterns:
        for path in folder.glob(pattern):
            if path.resolve() not in kept:
                path.unlink()


def headline_table(run_dir: str | Path) -> RichTable:
    """The headline numbers of ``run_dir`` for the terminal."""
    run = load_run(run_dir)
    tables = build_tables(run.rows)  # no figures: the terminal needs only the numbers
    return render_headline(tables, complete=not find_gaps(run, tables))
