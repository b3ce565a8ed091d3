"""Pre-trained knowledge: unlearn celebrities the base model learned in pre-training, chosen by
probing the base model's own answers (only people it knows can be forgotten).

Its reading and figure also set its costs beside the fine-tuned scenario's: general
capability lost per method, for both sources of knowledge.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from pulse.errors import PulseError
from pulse.protocol.cells import Population
from pulse.protocol.config import Scenario, TrainSettings
from pulse.protocol.engine import Engine
from pulse.protocol.oracles import pretrained_oracle
from pulse.protocol.registry import ScenarioType, register_scenario
from pulse.protocol.sources import mllmu_needs
from pulse.report.reading import ok_rows, pts
from pulse.report.tables import MCQ_COLUMNS, Layout, Table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from pulse.report.figures import FigureFile

NAME = "pretrained"
SOURCES = ("finetuned", NAME)  # the two sources of knowledge compared


class PretrainedScenario(Scenario):
    """Probe the base model on the celebrities, keep the ``top`` best known (or those at or
    above ``threshold``), unlearn ``forget`` of them and retain the rest."""

    top: int | None = Field(14, ge=2)
    threshold: float | None = Field(None, ge=0, le=1)
    forget: int = Field(6, ge=1)
    combine: Literal["min", "mean", "pooled"] = "min"  # per-person accuracy over the two modalities
    # Pre-trained knowledge is learnt deeper than a LoRA fine-tune: every pair of a celebrity,
    # in one pass. Evaluated along the way like the finetuned scenario's requests (one point).
    train: TrainSettings | None = Field(
        default_factory=lambda: TrainSettings(pairs_per_id=None, epochs=1, eval_every="0.6 epoch")
    )
    # The oracle: ``true`` with the world pre-trains it (the base model's recipe without the
    # forget celebrities) after the probe, a second pre-training (docs/benchmarks.md: its
    # time); a path is a local checkpoint pre-trained without them (with models.base).
    oracle: bool | Path = True
    added_later: ClassVar[tuple[str, ...]] = ("oracle",)
    oracle_of: ClassVar[str | None] = "base"

    @model_validator(mode="before")
    @classmethod
    def _threshold_replaces_top(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("threshold") is not None and "top" not in data:
            return {**data, "top": None}
        return data

    @model_validator(mode="after")
    def _selection(self) -> PretrainedScenario:
        if (self.top is None) == (self.threshold is None):
            raise ValueError("give exactly one of top and threshold")
        if self.top is not None and self.forget >= self.top:
            raise ValueError(f"forget ({self.forget}) must be below top ({self.top})")
        return self


def probed_split(engine: Engine, model: Path, config: str, everyone: list[str]):
    """Probe the base model on every candidate, keep the known ones, split them."""
    from pulse.eval.probing import probe_known_entities

    saved = engine.saved_split(NAME)
    if saved is not None:
        return saved
    spec = engine.config.scenarios[NAME]
    probed = engine.measure_model(Population(model, config, everyone))
    selection = probe_known_entities(
        probed.mcq,
        n_unlearn=spec.forget,
        n_retain=0,
        seed=engine.config.seed,
        top_k=spec.top,
        threshold=spec.threshold,
        combine=spec.combine,
    )
    if len(selection.known) <= spec.forget:
        raise PulseError(
            f"{NAME}: only {len(selection.known)} people pass the probe, need more than "
            f"forget ({spec.forget})"
        )
    forget = selection.unlearn
    retain = sorted(set(selection.known) - set(forget))
    engine.store.write_json(selection.to_dict() | {"retain": retain}, "splits", NAME, "probe.json")
    return engine.save_split(NAME, forget, retain)


def run(engine: Engine, name: str) -> None:
    assert engine.sources.base is not None
    config = engine.config.data.celebrities
    everyone = sorted(engine.measurer.people(config))
    forget, retain = probed_split(engine, engine.sources.base, config, everyone)
    splits = {"forget": forget, "retain": retain}
    oracle = pretrained_oracle(engine, forget)  # trained after the probe chose the forget set
    # The before row reads the probe's own evaluation (every celebrity).
    engine.before(name, Population(engine.sources.base, config, everyone, oracle), splits)
    group = Population(engine.sources.base, config, forget + retain, oracle)
    engine.oracle(name, group, splits)
    engine.methods(name, group, splits, forget, retain)


def _by_source(tables: Sequence[Table]) -> dict[str, Table]:
    found: dict[str, Table] = {}
    for table in tables:
        if table.kind in SOURCES and table.before:
            found.setdefault(table.kind, table)
    return found


def knowledge_source(tables: Sequence[Table]) -> list[str]:
    """Fine-tuned against pre-trained knowledge: general capability lost, per method."""
    by_kind = _by_source(tables)
    if len(by_kind) < 2:
        return []
    finetuned, pretrained = by_kind["finetuned"], by_kind[NAME]
    losses = {
        kind: {
            r.label: v for r in ok_rows(t.headline_rows) if (v := t.drop(r, "general")) is not None
        }
        for kind, t in by_kind.items()
    }
    common = [label for label in losses["finetuned"] if label in losses[NAME]]
    if not common:
        return []
    costlier = [label for label in common if losses[NAME][label] > losses["finetuned"][label]]
    details = "; ".join(
        f"{label} {pts(losses['finetuned'][label])} ({finetuned.scenario}) against "
        f"{pts(losses[NAME][label])} ({pretrained.scenario})"
        for label in common
    )
    return [
        f"Unlearning pre-trained knowledge costs more general capability than fine-tuned "
        f"knowledge for {len(costlier)} of {len(common)} methods: {details}."
    ]


def generality_loss(tables: Sequence[Table], colours: dict[str, str]) -> list[FigureFile]:
    """General capability lost per method, fine-tuned against pre-trained knowledge."""
    from pulse.report.figures import FigureFile, png

    fig = generality_loss_figure(tables)
    if fig is None:
        return []
    return [
        FigureFile(
            "generality_loss.png",
            "Generality loss: fine-tuned against pre-trained knowledge",
            "General capability (MMBench-format, circular) before minus after unlearning, per "
            "method and scenario; lower is better. The oracle, where a scenario has one, is "
            "what exact unlearning costs.",
            png(fig),
        )
    ]


def generality_loss_figure(tables: Sequence[Table]) -> Figure | None:
    """The bars of :func:`generality_loss`: one group per method (the oracle's first), one
    bar per knowledge source."""
    # matplotlib only when a report is drawn, not whenever the scenarios are registered.
    from matplotlib.figure import Figure

    from pulse.report.figures import PALETTE, Bar, bar_legend, bars, figure_pct

    eligible = [
        t
        for t in tables
        if t.kind in SOURCES
        and t.has("general")
        and t.before
        and t.before.value("general") is not None
    ]
    if not eligible:
        return None
    # The oracle first where a table has one: what exact unlearning costs in generality.
    oracle = ["oracle"] if any(t.oracle for t in eligible) else []
    labels = oracle + list(dict.fromkeys(r.label for t in eligible for r in t.headline_rows))
    series: dict[str, list[Bar]] = {}
    for table in eligible:
        by_label = {r.label: r for r in table.headline_rows}
        if table.oracle is not None:
            by_label["oracle"] = table.oracle
        series[table.scenario] = [
            (figure_pct(table.drop(row, "general")), row.status)
            if (row := by_label.get(label))
            else (None, "none" if label == "oracle" else "not run")
            for label in labels
        ]
    scenario_colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    fig = Figure(figsize=(max(4.8, 1.2 + 1.0 * len(labels)), 3.4), layout="constrained")
    ax = fig.subplots()
    bars(ax, labels, series, scenario_colours)
    ax.set_ylabel("general capability lost (points)")
    bar_legend(fig, scenario_colours)
    ax.set_title("General capability lost\nfine-tuned against pre-trained knowledge")
    return fig


NO_ORACLE = (
    "no oracle of pre-trained knowledge was given or trained (with the world, "
    "scenarios.pretrained.oracle: true pre-trains one, at the cost of a second pre-training; "
    "with local checkpoints, scenarios.pretrained.oracle names a base model pre-trained "
    "without the forget celebrities)"
)


register_scenario(
    ScenarioType(
        name=NAME,
        config=PretrainedScenario,
        run=run,
        layout=Layout("Pre-trained knowledge", MCQ_COLUMNS, "setting"),
        reading_across=knowledge_source,
        figures=generality_loss,
        needs=lambda config, sources: mllmu_needs(config, sources, "models.base", NAME),
        no_oracle=NO_ORACLE,
    )
)
