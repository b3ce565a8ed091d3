"""Update scope: the finetuned scenario's request trained with different parts of the model
updated (LoRA on the language model, plus the projector, plus the vision tower), and one
method's scopes compared with each other on the same people and questions; evaluated along
the requests (``train.eval_every``), also at matched forgetting."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from pulse.protocol.cells import CellId, Outcomes
from pulse.protocol.config import MethodEntry, Methods, Scenario, ScopeConfig, parse_scope_label
from pulse.protocol.engine import Engine
from pulse.protocol.registry import ScenarioType, register_scenario
from pulse.protocol.scenarios.finetuned import COLUMNS, fictitious
from pulse.protocol.scenarios.finetuned import NAME as FINETUNED
from pulse.protocol.sources import mllmu_needs
from pulse.report.against_oracle import below_oracle_note
from pulse.report.reading import clear_leader, lead_note, ok_rows, pct
from pulse.report.tables import Layout, Table

NAME = "scope"


class ScopeScenario(Scenario):
    """The finetuned scenario's request with different update scopes. PULSE's ablation is a GA
    row set, hence ``ga`` by default (``methods: null`` uses the run's methods)."""

    methods: Methods | None = Field(default_factory=lambda: [MethodEntry(method="ga")])
    scopes: list[str] = Field(
        default_factory=lambda: ["llm", "projector+llm", "vision+projector+llm"]
    )
    # Its own oracle (a local checkpoint); default: the finetuned scenario's (same forget set).
    oracle: Path | None = None
    added_later: ClassVar[tuple[str, ...]] = ("oracle",)
    oracle_of: ClassVar[str | None] = "finetuned"
    oracle_from: ClassVar[str | None] = FINETUNED

    @field_validator("scopes")
    @classmethod
    def _labels(cls, labels: list[str]) -> list[str]:
        for label in labels:
            parse_scope_label(label, ScopeConfig())
        if len(set(labels)) != len(labels):
            raise ValueError("a scope is listed twice")
        return labels


def run(engine: Engine, name: str) -> None:
    group, forget, retain = fictitious(engine, name)
    splits = {"forget": forget, "retain": retain}
    engine.before(name, group, splits)
    engine.oracle(name, group, splits)
    by_method: dict[str, dict[CellId, Outcomes]] = {}
    for label in engine.config.scenarios[name].scopes:
        scope = parse_scope_label(label, engine.config.train_of(name).scope)
        for entry in engine.config.methods_of(name):
            cell = CellId(name, entry.name, label)
            _, outcomes = engine.request_stage(
                f"{name}/{label}/{entry.name}", cell, group, splits, entry, forget, retain, scope
            )
            by_method.setdefault(entry.name, {})[cell] = outcomes
    # The ablation compares one method's scopes with each other, not methods.
    for method, cells in by_method.items():
        engine.contrasts(f"{name}/contrasts/{method}", group, splits, cells)
    # Evaluated along the requests (scenarios.scope.train.eval_every): the scopes at matched
    # forgetting.
    engine.matched(
        name, group, splits, {c: o for cells in by_method.values() for c, o in cells.items()}
    )


def reading(table: Table) -> list[str]:
    """Per method: the scope that forgets most and the one that keeps the most general
    capability, each against the runner-up."""
    out = []
    for method in dict.fromkeys(r.method for r in table.method_rows):
        rows = ok_rows([r for r in table.headline_rows if r.method == method])
        by_setting = {r.setting: r for r in rows}
        forget = {r.setting: v for r in rows if (v := r.value("forget_multimodal")) is not None}
        general = {r.setting: v for r in rows if (v := r.value("general")) is not None}
        parts = []
        if scope := clear_leader(forget, lowest=True):
            parts.append(
                f"updating {scope} forgets most (multimodal {pct(forget[scope])}"
                + lead_note(table, forget, by_setting, "forget_multimodal", lowest=True)
                + below_oracle_note(table, by_setting[scope])
                + ")"
            )
        if scope := clear_leader(general):
            parts.append(
                f"{scope} keeps the most general capability ({pct(general[scope])}"
                + lead_note(table, general, by_setting, "general", lowest=False)
                + ")"
            )
        if parts:
            out.append(f"For {method} in {table.scenario}, " + "; ".join(parts) + ".")
    return out


NO_ORACLE = (
    "the run's models are local checkpoints and none of scenarios.scope.oracle, "
    "scenarios.finetuned.oracle and models.oracle names one (the fine-tuned model's recipe "
    "without the forget set: pulse finetune --exclude), or its rows were written before "
    "oracles existed"
)


register_scenario(
    ScenarioType(
        name=NAME,
        config=ScopeScenario,
        run=run,
        layout=Layout("Update scope", COLUMNS, "scope"),
        reading=reading,
        needs=lambda config, sources: mllmu_needs(config, sources, "models.finetuned", NAME),
        no_oracle=NO_ORACLE,
    )
)
