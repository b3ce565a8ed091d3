"""Tables as CSV (for analysis) and LaTeX (for papers), in the same units as the report:
accuracies in percent, deltas against before in points."""

from __future__ import annotations

import csv
import io

from pulse.report.tables import Table, TableRow, percent, plus_minus, signed_points


def _precise(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.2f}"


def table_csv(table: Table) -> str:
    """One line per table row; per column its value, its 95 % interval (``_low`` /
    ``_high``, empty where none was measured), its delta and the delta's paired interval
    (``_delta_low`` / ``_delta_high``), ``best`` lists the columns
    where the row holds the best value, ``status`` / ``detail`` say why a row has none. A run
    with repeats adds ``_seeds`` / ``_seed_low`` / ``_seed_high`` per column, a sequential
    table ``_gap`` / ``_gap_low`` / ``_gap_high`` (request K minus the one-batch request, in
    points, with the paired interval) on each method's last request."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    value_headers = [
        name
        for c in table.columns
        for name in (
            c.key,
            f"{c.key}_low",
            f"{c.key}_high",
            f"{c.key}_delta",
            f"{c.key}_delta_low",
            f"{c.key}_delta_high",
        )
    ]
    # A run with repeats adds, per column, how many training seeds a value pools and their
    # own lowest and highest values.
    seeded = max(table.seed_counts, default=1) > 1
    if seeded:
        value_headers += [
            name
            for c in table.columns
            for name in (f"{c.key}_seeds", f"{c.key}_seed_low", f"{c.key}_seed_high")
        ]
    # The sequential scenario adds the sequential-vs-batch gap, on the last request's rows.
    gap_columns = table.gap_columns
    value_headers += [
        name
        for c in gap_columns
        for name in (f"{c.key}_gap", f"{c.key}_gap_low", f"{c.key}_gap_high")
    ]
    writer.writerow([*table.header, "status", *value_headers, "best", "detail"])
    for row in table.rows:
        values = []
        best = []
        for column in table.columns:
            cell = row.cells[column.key]
            numbers = (cell.value, cell.low, cell.high, cell.delta, cell.delta_low, cell.delta_high)
            values += [_precise(v) for v in numbers]
            if cell.best:
                best.append(column.key)
        if seeded:
            for column in table.columns:
                cell = row.cells[column.key]
                seeds = str(cell.seeds) if cell.value is not None else ""
                values += [seeds, _precise(cell.seed_low), _precise(cell.seed_high)]
        last = row.requests > 1 and row.request == row.requests
        for column in gap_columns:
            gap = table.gap(row.method, column) if last else None
            numbers = (gap.value, gap.low, gap.high) if gap else (None, None, None)
            values += [_precise(v) for v in numbers]
        writer.writerow([*row.keys, row.status, *values, " ".join(best), row.detail or ""])
    return buffer.getvalue()


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)


def _latex_cell(row: TableRow, key: str) -> str:
    cell = row.cells[key]
    if cell.value is None:
        return "--"
    text = percent(cell.value)
    text = rf"\textbf{{{text}}}" if cell.best else text
    if cell.half_width is not None:
        text += rf" {{\scriptsize $\pm${plus_minus(cell).removeprefix('±')}}}"
    if cell.delta is not None:
        delta = signed_points(cell.delta).replace("-", "$-$")
        text += rf" {{\scriptsize ({delta})}}"
    return text


def table_latex(table: Table) -> str:
    """A booktabs table: best values in bold, deltas against before small in parentheses,
    a row that diverged or failed spans its value columns with its status."""
    keys, width = len(table.header), len(table.columns)
    lines = [
        "% needs \\usepackage{booktabs}",
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(table.title)}: accuracy in \%, $\pm$ half its 95 \% "
        r"interval, change against before in points; best in bold; $\downarrow$ lower is "
        r"better, $\uparrow$ higher is better.}",
        rf"\label{{tab:pulse-{latex_escape(table.slug)}}}",
        r"\begin{tabular}{" + "l" * keys + "r" * width + "}",
        r"\toprule",
    ]
    groups, rules, start = [], [], keys + 1
    for name, span, lower in table.column_groups():
        arrow = "" if lower is None else r" $\downarrow$" if lower else r" $\uparrow$"
        groups.append(rf"\multicolumn{{{span}}}{{c}}{{{latex_escape(name)}{arrow}}}")
        rules.append(rf"\cmidrule(lr){{{start}-{start + span - 1}}}")
        start += span
    lines.append(" & ".join([""] * keys + groups) + r" \\")
    lines.append(" ".join(rules))
    header = [latex_escape(h) for h in table.header] + [
        latex_escape(c.label) for c in table.columns
    ]
    lines += [" & ".join(header) + r" \\", r"\midrule"]
    for index, row in enumerate(table.rows):
        keys_tex = [latex_escape(k) for k in row.keys]
        if row.status != "ok":
            body = [rf"\multicolumn{{{width}}}{{c}}{{\textit{{{latex_escape(row.status)}}}}}"]
        else:
            body = [_latex_cell(row, c.key) for c in table.columns]
        lines.append(" & ".join(keys_tex + body) + r" \\")
        if row.is_reference and not _reference_follows(table, index):
            lines.append(r"\midrule")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _reference_follows(table: Table, index: int) -> bool:
    """Whether the row after ``index`` is a reference row (before, oracle) of the same setting:
    a rule closes each group of reference rows (one per PEBench target kind)."""
    rows = table.rows
    if index + 1 >= len(rows):
        return False
    later = rows[index + 1]
    return later.is_reference and later.setting == rows[index].setting
