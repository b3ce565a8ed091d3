"""The headline numbers as a compact rich table for the terminal (the report has the rest)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table as RichTable
from rich.text import Text

from pulse.report.tables import MCQ_COLUMNS, Table, TableRow, percent

# Two-line headers so the table fits an 80-column terminal.
HEADERS = {
    "forget_multimodal": "forget\nMM ↓",
    "forget_text": "forget\ntext ↓",
    "retain_multimodal": "retain\nMM ↑",
    "retain_text": "retain\ntext ↑",
    "general": "general\n↑",
}


def _cell(row: TableRow, key: str) -> Text:
    if row.status != "ok":
        return Text(row.status, style="yellow")
    cell = row.cells.get(key)
    if cell is None or cell.value is None:
        return Text("–")
    text = percent(cell.value)  # no delta: it would wrap at 80 columns (the report has them)
    return Text(text, style="bold" if cell.best else "")


def render_headline(tables: Sequence[Table], complete: bool) -> RichTable:
    """Per scenario with forget / retain columns: the before and oracle rows, then one row per
    method and setting (a sequential chain shows its last request)."""
    title = "Headline results (%; best in bold)"
    seeds = max((n for t in tables for n in t.seed_counts), default=1)
    if seeds > 1:
        title = f"Headline results (%; means over {seeds} training seeds; best in bold)"
    caption = Text("Full tables, PEBench and figures: report.html")
    if not complete:
        missing = ("Some results are missing: see What is missing in report.html.", "yellow")
        caption = Text.assemble(missing, " ", caption)
    out = RichTable(title=Text(title), caption=caption, header_style="bold")
    # One label column, the scenario as a section heading: the table fits 80 columns.
    out.add_column("row", no_wrap=True)
    for column in MCQ_COLUMNS:
        out.add_column(HEADERS[column.key], justify="right")
    for table in tables:
        if not table.has("forget_multimodal"):
            continue
        out.add_row(Text(table.scenario, style="bold"))
        references = [r for r in (table.before, table.oracle) if r is not None]
        rows = references + table.headline_rows
        for row in rows:  # Text, never markup: a label such as ``ga[lr=0.0001]`` prints as is
            out.add_row(Text(f" {row.label}"), *(_cell(row, c.key) for c in MCQ_COLUMNS))
        out.add_section()
    return out
