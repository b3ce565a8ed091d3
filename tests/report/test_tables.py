"""Table cells from the fabricated run: values, deltas, best marks, diverged and missing rows."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pulse.report.tables import build_tables, percent, signed_points

from .conftest import before, full_rows, mcq


@pytest.fixture(scope="module")
def tables():
    return {t.scenario: t for t in build_tables(full_rows())}


def by_label(table):
    return {r.label: r for r in table.rows}


def test_tables_follow_the_papers_order_of_scenarios(tables):
    assert list(tables) == ["finetuned", "pretrained", "sequential", "scope", "pebench"]


def test_scenario_table_has_before_first_then_methods_with_values_and_deltas(tables):
    table = tables["finetuned"]
    assert table.header == ("method",)
    assert [c.key for c in table.columns] == [
        "forget_multimodal",
        "forget_text",
        "retain_multimodal",
        "retain_text",
        "general",
    ]
    assert [r.label for r in table.rows] == ["before", "ga", "ga_kl", "npo"]
    before, ga = table.rows[0], table.rows[1]
    assert before.value("forget_multimodal") == pytest.approx(0.80)
    assert before.cells["forget_multimodal"].delta is None
    assert ga.value("forget_text") == pytest.approx(0.40)
    assert ga.cells["forget_text"].delta == pytest.approx(-0.38)
    assert ga.cells["general"].delta == pytest.approx(-0.30)
    assert percent(ga.value("forget_text")) == "40.0"
    assert signed_points(ga.cells["general"].delta) == "-30.0"


def test_best_is_lowest_forget_and_highest_retain_among_methods(tables):
    rows = by_label(tables["finetuned"])
    best = {k for r in rows.values() for k, c in r.cells.items() if c.best and r.label == "ga"}
    assert best == {"forget_multimodal", "forget_text"}
    assert rows["ga_kl"].cells["general"].best
    assert rows["ga_kl"].cells["retain_text"].best
    assert not any(c.best for c in rows["before"].cells.values())


def test_a_diverged_cell_is_a_row_with_its_status_and_no_values(tables):
    npo = by_label(tables["finetuned"])["npo"]
    assert npo.status == "diverged"
    assert npo.detail == "loss nan at step 3"
    assert all(c.value is None and not c.best for c in npo.cells.values())


def test_sequential_table_has_one_row_per_request_then_the_batch_row(tables):
    table = tables["sequential"]
    assert table.header == ("method", "request")
    assert [r.label for r in table.rows] == [
        "before",
        "ga · 1/3",
        "ga · 2/3",
        "ga · 3/3",
        "ga · batch",
        "ga_kl · 1/3",
        "ga_kl · 2/3",
        "ga_kl · 3/3",
        "ga_kl · batch",
    ]
    assert table.has("forgotten_multimodal", "forgotten_text")
    rows = by_label(table)
    assert rows["ga · 2/3"].value("general") == pytest.approx(0.40)
    assert rows["ga · 2/3"].cells["general"].delta == pytest.approx(-0.35)
    # Best competes within one request: ga forgets more at request 1, ga_kl keeps more.
    assert rows["ga · 1/3"].cells["forget_multimodal"].best
    assert not rows["ga_kl · 1/3"].cells["forget_multimodal"].best
    assert rows["ga_kl · 1/3"].cells["general"].best
    assert rows["ga_kl · batch"].cells["general"].best
    assert [r.label for r in table.headline_rows] == [
        "ga · 3/3",
        "ga · batch",
        "ga_kl · 3/3",
        "ga_kl · batch",
    ]


def test_requests_that_never_reported_become_missing_rows():
    rows = [
        r
        for r in full_rows()
        if not (r.scenario == "sequential" and r.method == "ga_kl" and r.request == 3)
    ]
    table = next(t for t in build_tables(rows) if t.scenario == "sequential")
    missing = by_label(table)["ga_kl · 3/3"]
    assert missing.status == "missing"
    assert all(c.value is None for c in missing.cells.values())


def test_scope_table_has_one_row_per_method_and_scope(tables):
    table = tables["scope"]
    assert table.header == ("method", "scope")
    rows = by_label(table)
    assert list(rows) == ["before", "ga · llm", "ga · projector+llm"]
    assert rows["ga · projector+llm"].cells["forget_multimodal"].best
    # All equal: nothing stands out, nothing is marked.
    assert not rows["ga · llm"].cells["forget_text"].best
    assert not rows["ga · projector+llm"].cells["forget_text"].best


def test_pebench_table_compares_methods_within_a_target_kind(tables):
    table = tables["pebench"]
    assert table.header == ("method", "target")
    assert [c.key for c in table.columns] == ["efficacy", "generality", "retain", "scope"]
    rows = by_label(table)
    assert list(rows) == ["before", "ga · person", "npo · person", "ga · event"]
    assert rows["ga · person"].cells["efficacy"].best
    assert rows["npo · person"].cells["retain"].best
    assert rows["ga · person"].cells["efficacy"].delta == pytest.approx(0.90)
    # Alone in its target: nothing to be best against.
    assert not any(c.best for c in rows["ga · event"].cells.values())


def test_ties_for_best_are_all_marked():
    sc = "scope"
    rows = before(sc, sc, forget=(0.8, 0.8), retain=(0.8, 0.8), general=0.8)
    for setting, forget in (("a", 0.1), ("b", 0.1), ("c", 0.3)):
        rows += mcq(sc, sc, "ga", setting, forget=(forget, 0.5), retain=(0.5, 0.5), general=0.5)
    (table,) = build_tables(rows)
    marked = [r.setting for r in table.rows if r.cells["forget_multimodal"].best]
    assert marked == ["a", "b"]


def test_columns_nothing_measured_are_dropped():
    rows = [r for r in full_rows() if r.scenario == "finetuned" and r.modality != "text"]
    (table,) = build_tables(rows)
    assert [c.key for c in table.columns] == ["forget_multimodal", "retain_multimodal", "general"]


def test_a_change_interval_without_a_change_is_not_shown():
    # "Forgotten so far" has no before value, so no delta: its change interval goes too.
    rows = [
        replace(r, change_low=-0.5, change_high=-0.3) if r.split in ("forgotten", "forget") else r
        for r in full_rows()
    ]
    sequential = build_tables(rows)[2]
    last = next(r for r in sequential.rows if (r.method, r.request) == ("ga", 3))
    assert last.cells["forgotten_multimodal"].delta is None
    assert last.delta_interval("forgotten_multimodal") is None
    assert last.delta_interval("forget_multimodal") == (-0.5, -0.3)
