"""write_report on the fabricated run: the files, their contents, and a partial run."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace

import pytest
from PIL import Image
from rich.console import Console

from pulse.errors import DataError
from pulse.protocol.results import read_results
from pulse.report import headline_table, write_report

from .conftest import CONFIG, full_rows, make_run, manifest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The fabricated run's report, written once for the tests that only read it."""
    return write_report(make_run(tmp_path_factory.mktemp("report"), full_rows(), manifest()))


@pytest.fixture
def full_run(report):
    return report.html.parent


def test_writes_markdown_html_figures_and_tables(full_run, report):
    assert report.markdown == full_run / "report.md"
    assert report.html == full_run / "report.html"
    assert {p.name for p in report.figures} == {
        "sustainability_sequential.png",
        "tradeoff_finetuned.png",
        "tradeoff_pretrained.png",
        "tradeoff_sequential.png",
        "tradeoff_scope.png",
        "modality_gap.png",
        "generality_loss.png",
    }
    scenarios = ["finetuned", "pretrained", "sequential", "scope", "pebench"]
    assert {p.name for p in report.tables} == {
        f"{s}.{ext}" for s in scenarios for ext in ("csv", "tex")
    }
    assert all(p.is_file() for p in report.all)
    assert not list(full_run.rglob("*.tmp"))


def test_figures_are_valid_pngs_and_the_same_bytes_every_time(write_run, report):
    first = {p.name: p.read_bytes() for p in report.figures}
    for name, data in first.items():
        assert data.startswith(PNG_SIGNATURE), name
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        assert b"matplotlib" not in data.lower(), name  # no version text chunk
    again = write_report(write_run(full_rows(), manifest()))
    assert {p.name: p.read_bytes() for p in again.figures} == first
    assert again.html.read_bytes() == report.html.read_bytes()


def test_csv_holds_percent_values_deltas_best_and_status(full_run, report):
    rows = list(csv.DictReader((full_run / "tables/finetuned.csv").open(encoding="utf-8")))
    assert [r["method"] for r in rows] == ["before", "ga", "ga_kl", "npo"]
    ga = rows[1]
    assert ga["status"] == "ok"
    assert ga["forget_multimodal"] == "10.00" and ga["forget_multimodal_delta"] == "-70.00"
    assert ga["best"] == "forget_multimodal forget_text"
    assert rows[0]["forget_multimodal_delta"] == ""
    npo = rows[3]
    assert npo["status"] == "diverged" and npo["detail"] == "loss nan at step 3"
    assert npo["general"] == ""
    sequential = list(csv.DictReader((full_run / "tables/sequential.csv").open(encoding="utf-8")))
    assert [(r["method"], r["request"]) for r in sequential][:5] == [
        ("before", "0"),
        ("ga", "1/3"),
        ("ga", "2/3"),
        ("ga", "3/3"),
        ("ga", "batch"),
    ]


def test_latex_marks_best_deltas_and_diverged_rows(full_run, report):
    tex = (full_run / "tables/finetuned.tex").read_text(encoding="utf-8")
    assert r"\begin{tabular}{lrrrrr}" in tex
    assert r"\multicolumn{2}{c}{Forget accuracy $\downarrow$}" in tex
    assert r"ga & \textbf{10.0} {\scriptsize ($-$70.0)} &" in tex
    assert r"npo & \multicolumn{5}{c}{\textit{diverged}} \\" in tex
    assert r"ga\_kl" in tex  # escaped
    assert tex.count(r"\midrule") == 2  # under the header and under the before row


def test_html_is_self_contained(report):
    html = report.html.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.IGNORECASE)
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    images = re.findall(r"<img\b[^>]*>", html)
    assert len(images) == len(report.figures)
    assert all('src="data:image/png;base64,' in tag for tag in images)


def test_html_and_markdown_carry_tables_reading_and_run_facts(report):
    html = report.html.read_text(encoding="utf-8")
    md = report.markdown.read_text(encoding="utf-8")
    for text in (html, md):
        assert "ga_kl forgets the most per point" in text
        assert "finetuned: npo diverged: loss nan at step 3." in text
        assert "abc123" in text and "2.13.0" in text  # config hash, versions
        assert "scenarios:" in text  # the config, verbatim
    assert '<td class="num best">10.0<span class="delta good">-70.0</span></td>' in html
    assert "<details><summary>Config (config.yaml)</summary>" in html
    assert "| ga | **10.0** (-70.0) | **40.0** (-38.0) |" in md
    assert "| npo | *diverged* |" in md
    assert "![Modality gap](figures/modality_gap.png)" in md
    assert "| finetuned | ga | 12.5 | 3.2 |" in md  # timing rows, from the manifest


def test_partial_run_reports_what_is_missing(write_run):
    rows = [
        r
        for r in full_rows()
        if r.scenario != "pebench"
        and not (r.scenario == "sequential" and r.method == "ga_kl" and r.request >= 2)
        and not (r.scenario == "pretrained" and r.method == "npo")
    ]
    run = write_run(
        rows,
        manifest(
            finished=False,
            sequential={"status": "failed", "seconds": 3.0, "error": "CUDA out of memory"},
            pebench={"status": "pending", "seconds": None, "error": None},
        ),
    )
    files = write_report(run)
    md = files.markdown.read_text(encoding="utf-8")
    html = files.html.read_text(encoding="utf-8")
    for text in (md, html):
        assert "The run did not finish" in text
        assert "Stage sequential failed: CUDA out of memory" in text
        assert "1 stage(s) never ran: pebench." in text
        assert "Scenario pebench is enabled in the config but has no results." in text
        assert "pretrained: no results for method npo." in text
        assert "sequential: ga_kl (sequential) has no result for request 2, 3 of 3." in text
    assert "Incomplete" in html
    assert not (run / "tables/pebench.csv").exists()


def test_a_run_with_every_cell_measured_is_complete(write_run):
    rows = [r for r in full_rows() if r.status == "ok"]
    config = CONFIG.replace("methods: [{method: ga}, {method: ga_kl}, {method: npo}]\n", "")
    config = config.replace(
        "scenarios:\n", "scenarios:\n  finetuned: {methods: [{method: ga}, {method: ga_kl}]}\n"
    )
    files = write_report(write_run(rows, manifest(), config))
    html = files.html.read_text(encoding="utf-8")
    assert "Complete run" in html
    assert "What is missing" not in html


def test_missing_files_still_give_a_report(write_run):
    run = write_run(None, None, None)
    files = write_report(run)
    md = files.markdown.read_text(encoding="utf-8")
    assert "results.jsonl is missing" in md
    assert "manifest.json is missing" in md
    assert "config.yaml is missing" in md
    assert files.figures == [] and files.tables == []
    assert files.html.is_file()


def test_a_damaged_results_line_is_skipped_and_named(write_run):
    run = write_run(full_rows(), manifest())
    with (run / "results.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"scenario": "finetuned", "truncat')
    md = write_report(run).markdown.read_text(encoding="utf-8")
    lines = len((run / "results.jsonl").read_text(encoding="utf-8").splitlines())
    assert f"results.jsonl: 1 unreadable line(s) skipped ({lines})" in md
    assert "| ga | **10.0** (-70.0)" in md


def test_a_results_line_with_a_non_numeric_interval_is_named(write_run, tmp_path):
    run = write_run(full_rows(), manifest())
    path = run / "results.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[0])
    lines[0] = json.dumps({**row, "low": "x"})
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as error:
        read_results(path)
    assert str(error.value) == f"{path}, row 1: field 'low' must be a number or null, got 'x'"
    md = write_report(run).markdown.read_text(encoding="utf-8")
    assert "results.jsonl: 1 unreadable line(s) skipped (1)" in md


def test_stale_figures_and_tables_are_removed(write_run):
    full_run = write_run(full_rows(), manifest())
    (full_run / "figures").mkdir()
    (full_run / "tables").mkdir()
    (full_run / "figures/old_plot.png").write_bytes(b"x")
    (full_run / "tables/renamed.csv").write_text("x")
    write_report(full_run)
    assert not (full_run / "figures/old_plot.png").exists()
    assert not (full_run / "tables/renamed.csv").exists()


def test_headline_table_for_the_terminal(full_run):
    console = Console(width=80, record=True, color_system=None)
    console.print(headline_table(full_run))
    text = console.export_text()
    assert "forget" in text and "MM ↓" in text and "general" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "│ finetuned" in text
    assert re.search(r"│  ga\s+│\s+10\.0 │\s+40\.0 │", text)
    assert "diverged" in text
    assert "ga · batch" in text
    assert "pebench" not in text.split("Full tables")[0]  # no forget / retain columns there


def test_intervals_show_as_plus_minus_in_every_format(write_run):
    """A row's 95 % interval: ± half its width in Markdown, HTML (the bounds in a tooltip) and
    LaTeX, the bounds in the CSV; a row without one shows none."""

    def with_interval(row):
        if row.cell == ("finetuned", "ga", "", 1) and row.split == "forget":
            return replace(
                row,
                low=row.value - 0.05,
                high=row.value + 0.07,
                change_low=-0.75,
                change_high=-0.65,
            )
        return row

    report = write_report(write_run([with_interval(r) for r in full_rows()], manifest()))
    run = report.html.parent
    markdown = report.markdown.read_text(encoding="utf-8")
    assert "| ga | **10.0** ±6.0 (-70.0) | **40.0** ±6.0 (-38.0) |" in markdown
    assert "| ga_kl | 30.0 (-50.0) |" in markdown
    html = report.html.read_text(encoding="utf-8")
    assert '<span class="pm" title="95 % interval 5.0–17.0">±6.0</span>' in html
    rows = list(csv.DictReader((run / "tables/finetuned.csv").open(encoding="utf-8")))
    ga, ga_kl = rows[1], rows[2]
    assert (ga["forget_multimodal_low"], ga["forget_multimodal_high"]) == ("5.00", "17.00")
    assert ga_kl["forget_multimodal_low"] == ga_kl["forget_multimodal_high"] == ""
    assert (ga["forget_multimodal_delta_low"], ga["forget_multimodal_delta_high"]) == (
        "-75.00",
        "-65.00",
    )
    title = 'title="95 % interval of the change (paired): -75.0 to -65.0 points">-70.0</span>'
    assert title in html
    tex = (run / "tables/finetuned.tex").read_text(encoding="utf-8")
    assert r"ga & \textbf{10.0} {\scriptsize $\pm$6.0} {\scriptsize ($-$70.0)} &" in tex


def gap_row(method, split, modality, value, low, high, repeat=None, seeds=1):
    return replace(
        full_rows()[0],
        scenario="sequential",
        kind="sequential",
        method=method,
        setting="sequential",
        request=3,
        requests=3,
        split=split,
        modality=modality,
        metric="gap",
        value=value,
        low=low,
        high=high,
        repeat=repeat,
        seeds=seeds,
    )


def test_the_sequential_gap_is_a_table_of_its_own_and_csv_columns(write_run, tmp_path):
    rows = [
        *full_rows(),
        gap_row("ga", "forget", "multimodal", 0.084, 0.016, 0.148),
        gap_row("ga", "general", "all", -0.005, -0.075, 0.065),
    ]
    files = write_report(write_run(rows, manifest()))
    md = files.markdown.read_text(encoding="utf-8")
    assert "Sequential against one batch: the last request's value minus" in md
    assert "| method | Forget accuracy multimodal | General capability circular |" in md
    assert "| ga | +8.4 ±6.6 | -0.5 ±7.0 |" in md
    html = files.html.read_text(encoding="utf-8")
    assert 'title="paired 95 % interval: +1.6 to +14.8 points">+8.4 ±6.6</td>' in html
    table = list(csv.DictReader((files.html.parent / "tables/sequential.csv").open()))
    last = next(r for r in table if (r["method"], r["request"]) == ("ga", "3/3"))
    assert (last["forget_multimodal_gap"], last["forget_multimodal_gap_low"]) == ("8.40", "1.60")
    assert last["general_gap_high"] == "6.50"
    earlier = next(r for r in table if (r["method"], r["request"]) == ("ga", "2/3"))
    assert earlier["forget_multimodal_gap"] == ""
    # Without gap rows nothing of it shows.
    plain_run = make_run(tmp_path, full_rows(), manifest(), name="plain")
    plain = write_report(plain_run).markdown.read_text(encoding="utf-8")
    assert "Sequential against one batch: the last" not in plain


def test_pooled_seeds_show_their_range_and_the_legend_says_what_they_are(write_run, tmp_path):
    # finetuned ga pooled over two seeds (forget multimodal 0.10 = mean of 0.06 and 0.14).
    pooled = [replace(r, seeds=2) for r in full_rows() if r.cell == ("finetuned", "ga", "", 1)]
    seeds = [
        replace(r, repeat=k, value=r.value + (0.04 if k else -0.04)) for r in pooled for k in (0, 1)
    ]
    rows = [r for r in full_rows() if r.cell != ("finetuned", "ga", "", 1)] + pooled + seeds
    files = write_report(write_run(rows, manifest()))
    md = files.markdown.read_text(encoding="utf-8")
    assert "| ga | **10.0** (-70.0) | **40.0** (-38.0) |" in md  # the pooled values only
    assert "mean over 2 training seeds of the same request" in md
    table = list(csv.DictReader((files.html.parent / "tables/finetuned.csv").open()))
    ga = next(r for r in table if r["method"] == "ga")
    assert (ga["forget_multimodal_seeds"], ga["forget_multimodal_seed_low"]) == ("2", "6.00")
    assert ga["forget_multimodal_seed_high"] == "14.00"
    assert next(r for r in table if r["method"] == "before")["forget_multimodal_seeds"] == "1"
    # A run without repeats keeps its CSV columns and legend.
    plain = write_report(make_run(tmp_path, full_rows(), manifest(), name="plain"))
    legend = plain.markdown.read_text(encoding="utf-8")
    assert "mean over" not in legend and "each request was trained once" in legend
    header = (plain.html.parent / "tables/finetuned.csv").read_text().splitlines()[0]
    assert "_seeds" not in header


def test_figures_draw_the_intervals_when_the_run_measured_them():
    from pulse.report.figures import build_figures
    from pulse.report.tables import build_tables, method_order

    from .test_reading import with_intervals

    def pngs(rows):
        figures = build_figures(build_tables(rows), method_order(rows))
        return {f.name: f.png for f in figures}

    plain, bands = pngs(full_rows()), pngs(with_intervals(full_rows(), 0.05))
    for name in ("sustainability_sequential.png", "tradeoff_finetuned.png"):
        assert plain[name] != bands[name], name
    # Figures that show no intervals are the same either way.
    assert plain["modality_gap.png"] == bands["modality_gap.png"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("seeds", 0, "field 'seeds' must be a positive integer, got 0"),
        ("repeat", "first", "field 'repeat' must be an integer or null, got 'first'"),
        ("versus", 3, "field 'versus' must be a method label or null, got 3"),
    ],
)
def test_a_results_line_with_a_bad_repeat_field_is_named(write_run, field, value, message):
    run = write_run(full_rows(), manifest())
    path = run / "results.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = json.dumps({**json.loads(lines[1]), field: value})
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as error:
        read_results(path)
    assert str(error.value) == f"{path}, row 2: {message}"
