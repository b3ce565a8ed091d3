"""The report as Markdown (figures linked from figures/, so it reads on GitHub or in an editor)."""

from __future__ import annotations

from collections.abc import Sequence

from pulse.report.content import FIGURES_DIR, ReportContent, table_files
from pulse.report.tables import (
    GAP_CAPTION,
    Table,
    TableRow,
    gap_text,
    percent,
    plus_minus,
    signed_points,
)


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int) -> list[str]:
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(_escape(h) for h in header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_escape(c) for c in row) + " |" for row in rows]
    return lines


def _cell(row: TableRow, key: str) -> str:
    if row.status != "ok":
        return f"*{row.status}*"
    cell = row.cells[key]
    if cell.value is None:
        return "–"
    text = f"**{percent(cell.value)}**" if cell.best else percent(cell.value)
    if cell.half_width is not None:
        text += f" {plus_minus(cell)}"
    return f"{text} ({signed_points(cell.delta)})" if cell.delta is not None else text


def _table(table: Table) -> list[str]:
    header = [*table.header] + [
        " ".join(part for part in (c.group, c.arrow, c.label) if part) for c in table.columns
    ]
    rows = [[*r.keys, *(_cell(r, c.key) for c in table.columns)] for r in table.rows]
    csv_path, tex_path = table_files(table)
    return [
        f"### {table.title}",
        "",
        *_grid(header, rows, len(table.header)),
        "",
        *_gap_table(table),
        f"As [CSV]({csv_path}) and [LaTeX]({tex_path}).",
        "",
    ]


def _gap_table(table: Table) -> list[str]:
    """The sequential-vs-batch gap of every method, in points, ± half its paired interval."""
    columns = table.gap_columns
    if not columns:
        return []
    header = ["method"] + [f"{c.group} {c.label}" for c in columns]
    rows = [
        [method, *(gap_text(table.gap(method, c)) for c in columns)] for method in table.gap_methods
    ]
    return [GAP_CAPTION, "", *_grid(header, rows, 1), ""]


def render_markdown(content: ReportContent) -> str:
    lines = [f"# {content.title}", ""]
    if not content.complete:
        lines += ["> **Incomplete:** see *What is missing* below.", ""]
    lines += ["## Reading", ""]
    lines += [f"- {s}" for s in content.reading] or ["No comparison can be made yet."]
    lines.append("")
    if content.gaps:
        lines += ["## What is missing", "", *[f"- {g}" for g in content.gaps], ""]
    lines += ["## Tables", "", content.legend, ""]
    if not content.tables:
        lines += ["No results yet.", ""]
    for table in content.tables:
        lines += _table(table)
    if content.figures:
        lines += ["## Figures", ""]
    for figure in content.figures:
        path = f"{FIGURES_DIR}/{figure.name}"
        lines += [f"### {figure.title}", "", f"![{figure.title}]({path})", "", figure.caption, ""]
    lines += _run(content)
    return "\n".join(lines).rstrip("\n") + "\n"


def _run(content: ReportContent) -> list[str]:
    info = content.info
    lines = ["## Run", "", *_grid(["item", "value"], info.facts, 2), ""]
    if info.versions:
        lines += ["### Versions", "", *_grid(["package", "version"], info.versions, 2), ""]
    if info.stages:
        header = ["stage", "status", "seconds", "error"]
        lines += ["### Stages", "", *_grid(header, info.stages, 2), ""]
    if info.timings:
        header = ["scenario", "row", "train s", "eval s"]
        lines += ["### Timing", "", *_grid(header, info.timings, 2), ""]
    if info.config_text is not None:
        lines += ["### Config", "", "```yaml", info.config_text.rstrip("\n"), "```", ""]
    return lines
