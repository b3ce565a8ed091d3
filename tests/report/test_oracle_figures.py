"""The figures mark the oracle and guessing: the trade-off (the oracle's point and its forget
accuracy as a line, guessing as a line), the sustainability curves (the oracle's accuracy in
every panel, guessing in the forget panels), the modality gap and the generality loss (the
oracle's own drop first). Hand-made rows."""

from __future__ import annotations

from pulse.protocol.results import ResultRow
from pulse.protocol.scenarios.pretrained import generality_loss, generality_loss_figure
from pulse.report.figures import (
    CHANCE,
    ORACLE,
    modality_gap_figure,
    sustainability_figure,
    tradeoff_figure,
)
from pulse.report.tables import build_tables

from .conftest import before, mcq
from .test_oracle_verdict import with_oracle

SEQ = "sequential"
COLOURS = {"ga": "#0072B2", "npo": "#E69F00", "ga_kl": "#009E73", "rmu": "#CC79A7"}


def chance(kind: str, value: float = 0.25, requests: int = 1) -> ResultRow:
    return ResultRow(kind, kind, "before", "", 0, requests, "forget", "all", "chance", value, 40)


def _marks(fig, gid: str) -> list:
    return [a for ax in fig.axes for a in ax.get_children() if a.get_gid() == gid]


def _vertical_at(fig, gid: str) -> set[float]:
    return {round(float(line.get_xdata()[0]), 6) for line in _marks(fig, gid)}


def test_the_tradeoff_marks_the_oracle_and_guessing():
    (table,) = build_tables([*with_oracle(), chance("finetuned")])
    fig = tradeoff_figure(table, COLOURS)
    assert fig is not None
    # Each panel: the oracle's point (30 %, 78 %) and its forget accuracy as a line; guessing.
    points = [m for m in _marks(fig, ORACLE) if len(m.get_xdata()) == 1 and m.get_marker() == "P"]
    assert len(points) == 2
    assert all((p.get_xdata()[0], p.get_ydata()[0]) == (30.0, 78.0) for p in points)
    assert 30.0 in _vertical_at(fig, ORACLE)
    assert _vertical_at(fig, CHANCE) == {25.0}
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "oracle" in legend and "chance (forget)" in legend


def test_without_an_oracle_the_tradeoff_marks_only_guessing():
    rows = [r for r in with_oracle() if r.method != "oracle"]
    (table,) = build_tables([*rows, chance("finetuned")])
    fig = tradeoff_figure(table, COLOURS)
    assert not _marks(fig, ORACLE) and _vertical_at(fig, CHANCE) == {25.0}
    assert "oracle" not in [t.get_text() for t in fig.legends[0].get_texts()]


def test_the_sustainability_curves_mark_the_oracle_and_guessing():
    rows = before(SEQ, SEQ, 2, forget=(0.8, 0.8), retain=(0.8, 0.8), general=0.7)
    rows += mcq(SEQ, SEQ, "oracle", "", 0, 2, forget=(0.3, 0.3), retain=(0.78, 0.78), general=0.7)
    for request, forget in ((1, 0.5), (2, 0.2)):
        rows += mcq(
            SEQ, SEQ, "ga", "", request, 2, forget=(forget, forget), retain=(0.7, 0.7), general=0.6
        )
    (table,) = build_tables([*rows, chance(SEQ, requests=2)])
    fig = sustainability_figure(table, {"ga": "#0072B2"})
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    oracle = [ax.get_title() for ax in fig.axes for a in ax.get_children() if a.get_gid() == ORACLE]
    guessing = [
        ax.get_title() for ax in fig.axes for a in ax.get_children() if a.get_gid() == CHANCE
    ]
    assert oracle == titles  # every panel: the oracle has a value in each
    assert guessing and all(t.startswith("Forget accuracy") for t in guessing)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "oracle" in legend and "chance (forget)" in legend


def test_the_modality_gap_and_the_generality_loss_show_the_oracle_first():
    tables = build_tables(with_oracle())
    fig = modality_gap_figure(tables)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks[0] == "oracle" and ticks[1:] == ["ga", "npo", "ga_kl", "rmu"]
    # The generality loss (the pretrained scenario's figure) sets both sources side by side.
    # With an oracle in one scenario only, its group leads and the other source says "none".
    pretrained = [r for r in with_oracle("pretrained") if r.method != "oracle"]
    tables = build_tables(with_oracle() + pretrained)
    (ax,) = generality_loss_figure(tables).axes
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0] == "oracle" and ticks[1:] == ["ga", "npo", "ga_kl", "rmu"]
    assert [t.get_text().strip() for t in ax.texts] == ["none"]
    (figure,) = generality_loss(tables, COLOURS)
    assert figure.png.startswith(b"\x89PNG")
