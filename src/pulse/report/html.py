"""The report as one self-contained HTML page: inline CSS, figures as base64 data URIs, no
script and no network, so it opens the same from a laptop, a mail attachment or a cluster."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape

from pulse.report.content import ReportContent, table_files
from pulse.report.tables import (
    GAP_CAPTION,
    Cell,
    Column,
    Table,
    TableRow,
    arrow,
    gap_text,
    percent,
    plus_minus,
    signed_points,
    signed_span,
)

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
  max-width: 1180px; margin: 0 auto; padding: 1.5rem 2rem 4rem; background: #fff; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; border-bottom: 1px solid #dde2ea; padding-bottom: .25rem;
  margin-top: 2.2rem; }
h3 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; }
nav a { margin-right: 1rem; }
a { color: #0b5cad; }
.banner { padding: .7rem 1rem; border-radius: 6px; margin: 1rem 0; }
.banner.ok { background: #e8f5ec; border: 1px solid #9fd3ae; }
.banner.partial { background: #fff4e0; border: 1px solid #f0c36d; }
.reading li, .gaps li { margin: .25rem 0; }
.legend, .files, figcaption { color: #5a6372; font-size: .88rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: .9rem; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #e6e9ef; white-space: nowrap; }
thead th { background: #f4f6f9; text-align: center; }
th.key, td.key { text-align: left; }
td.num { text-align: right; }
tr.before td { background: #fafbfc; font-style: italic; }
td.best { font-weight: 700; background: #eef6ff; }
.delta, .pm { font-size: .78rem; margin-left: .3rem; color: #6b7280; }
.delta.good { color: #15803d; }
.delta.bad { color: #b91c1c; }
td.status { text-align: center; color: #b45309; font-style: italic; }
td.missing { text-align: center; color: #9ca3af; font-style: italic; }
figure { margin: 1.2rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eef0f3; }
details { margin: .8rem 0; }
summary { cursor: pointer; font-weight: 600; }
pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; font-size: .82rem; }
table.plain td, table.plain th { text-align: left; }
"""


def render_html(content: ReportContent) -> str:
    sections = [
        ("reading", "Reading", _reading(content)),
        ("missing", "What is missing", _list(content.gaps, "gaps")) if content.gaps else None,
        ("tables", "Tables", _tables(content.tables, content.legend)),
        ("figures", "Figures", _figures(content)) if content.figures else None,
        ("run", "Run", _run(content)),
    ]
    present = [s for s in sections if s]
    nav = " ".join(f'<a href="#{anchor}">{escape(name)}</a>' for anchor, name, _ in present)
    body = "\n".join(
        f'<section id="{anchor}"><h2>{escape(name)}</h2>\n{html}</section>'
        for anchor, name, html in present
    )
    title = escape(content.title)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{title}</h1>\n{_banner(content)}\n<nav>{nav}</nav>\n{body}\n</body>\n</html>\n"
    )


def _banner(content: ReportContent) -> str:
    if content.complete:
        return '<p class="banner ok">Complete run: every stage done, every cell measured.</p>'
    count = len(content.gaps)
    return (
        f'<p class="banner partial"><strong>Incomplete:</strong> {count} thing(s) missing, '
        'listed under <a href="#missing">What is missing</a>.</p>'
    )


def _list(items: Sequence[str], css: str) -> str:
    return f'<ul class="{css}">' + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>\n"


def _reading(content: ReportContent) -> str:
    if not content.reading:
        return "<p>No comparison can be made yet.</p>\n"
    return _list(content.reading, "reading")


def _tables(tables: Sequence[Table], legend: str) -> str:
    if not tables:
        return "<p>No results yet.</p>\n"
    parts = [f'<p class="legend">{escape(legend)}</p>\n']
    for table in tables:
        csv_path, tex_path = table_files(table)
        parts.append(
            f"<h3>{escape(table.title)}</h3>\n"
            f'<div class="scroll">{_table(table)}</div>\n'
            f"{_gap_table(table)}"
            f'<p class="files">As <a href="{escape(csv_path)}">CSV</a> and '
            f'<a href="{escape(tex_path)}">LaTeX</a>.</p>\n'
        )
    return "".join(parts)


def _table(table: Table) -> str:
    keys = len(table.header)
    groups = "".join(
        f'<th colspan="{span}">{escape(name)} {arrow(lower)}</th>'
        for name, span, lower in table.column_groups()
    )
    labels = "".join(f'<th class="key">{escape(h)}</th>' for h in table.header)
    labels += "".join(f"<th>{escape(c.label)}</th>" for c in table.columns)
    head = f'<thead><tr><th colspan="{keys}"></th>{groups}</tr><tr>{labels}</tr></thead>'
    body = "".join(_row(table, row) for row in table.rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def _gap_table(table: Table) -> str:
    """The sequential-vs-batch gap of every method, in points (interval in the tooltip)."""
    columns = table.gap_columns
    if not columns:
        return ""
    labels = "".join(f"<th>{escape(c.group)}, {escape(c.label)}</th>" for c in columns)
    body = ""
    for method in table.gap_methods:
        cells = ""
        for column in columns:
            cell = table.gap(method, column)
            title = ""
            if cell is not None and cell.interval is not None:
                title = f' title="paired 95 % interval: {signed_span(cell.interval)} points"'
            cells += f'<td class="num"{title}>{escape(gap_text(cell))}</td>'
        body += f'<tr><td class="key">{escape(method)}</td>{cells}</tr>'
    head = f'<thead><tr><th class="key">method</th>{labels}</tr></thead>'
    return (
        f'<p class="legend">{escape(GAP_CAPTION)}</p>\n'
        f'<div class="scroll"><table>{head}<tbody>{body}</tbody></table></div>\n'
    )


def _row(table: Table, row: TableRow) -> str:
    keys = "".join(f'<td class="key">{escape(k)}</td>' for k in row.keys)
    width = len(table.columns)
    if row.status != "ok":
        css = "missing" if row.status == "missing" else "status"
        text = row.status + (f": {row.detail}" if row.detail else "")
        cells = f'<td class="{css}" colspan="{width}">{escape(text)}</td>'
    else:
        cells = "".join(_cell(row.cells[c.key], c) for c in table.columns)
    css = ' class="before"' if row.is_reference else ""
    return f"<tr{css}>{keys}{cells}</tr>"


def _cell(cell: Cell, column: Column) -> str:
    if cell.value is None:
        return '<td class="num missing">–</td>'
    delta = ""
    if cell.delta is not None:
        improved = cell.delta < 0 if column.lower_is_better else cell.delta > 0
        worsened = cell.delta > 0 if column.lower_is_better else cell.delta < 0
        tone = " good" if improved else " bad" if worsened else ""
        title = ""
        if cell.delta_interval is not None:
            bounds = signed_span(cell.delta_interval)
            title = f' title="95 % interval of the change (paired): {bounds} points"'
        text = escape(signed_points(cell.delta))
        delta = f'<span class="delta{tone}"{title}>{text}</span>'
    notes = []
    if cell.interval is not None:
        notes.append("95 % interval " + "–".join(percent(v) for v in cell.interval))
    if cell.seed_range is not None:
        low, high = (percent(v) for v in cell.seed_range)
        notes.append(f"mean of {cell.seeds} training seeds, from {low} to {high}")
    spread = ""
    if notes:
        spread = f'<span class="pm" title="{"; ".join(notes)}">{escape(plus_minus(cell))}</span>'
    css = "num best" if cell.best else "num"
    return f'<td class="{css}">{percent(cell.value)}{spread}{delta}</td>'


def _figures(content: ReportContent) -> str:
    parts = []
    for figure in content.figures:
        data = base64.b64encode(figure.png).decode("ascii")
        parts.append(
            f"<figure><h3>{escape(figure.title)}</h3>"
            f'<img src="data:image/png;base64,{data}" alt="{escape(figure.title)}">'
            f"<figcaption>{escape(figure.caption)}</figcaption></figure>\n"
        )
    return "".join(parts)


def _plain(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<div class="scroll"><table class="plain"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>\n"
    )


def _run(content: ReportContent) -> str:
    info = content.info
    parts = [_plain(["item", "value"], info.facts)]
    if info.versions:
        parts.append("<h3>Versions</h3>\n" + _plain(["package", "version"], info.versions))
    if info.stages:
        header = ["stage", "status", "seconds", "error"]
        parts.append("<h3>Stages</h3>\n" + _plain(header, info.stages))
    if info.timings:
        header = ["scenario", "row", "train s", "eval s"]
        parts.append("<h3>Timing</h3>\n" + _plain(header, info.timings))
    if info.config_text is not None:
        parts.append(
            "<details><summary>Config (config.yaml)</summary>"
            f"<pre>{escape(info.config_text)}</pre></details>\n"
        )
    return "".join(parts)
