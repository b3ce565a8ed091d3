"""Robustness: does a state's forgetting survive quantization and relearning?

Runs after every other scenario, on the states they left: by default the last state of every
method's request or chain (``targets``: the finetuned, pretrained and sequential scenarios that
ran; ``before`` and the oracle of each get the same attacks as references). Each attacked
state is a stage of its own (``robustness/<scenario>/<attack>/<method>``), resumable like any
other; its evaluation is cached under a state name that holds the attack and its settings.

Rows (scenario ``robustness``, setting ``<scenario> <attack>``): the attacked state's metrics
on the scenario's people, each change paired against the same state *unattacked*; and
``beyond_oracle`` rows: the attacked state minus the oracle under the same attack, on the same
questions, with its paired interval. Attacks: ``quantize-8`` / ``quantize-4``
(:mod:`pulse.protocol.attacks.quantize`) on the forget and retain splits; ``relearn``
(:mod:`pulse.protocol.attacks.relearn`) on the ``relearned`` half, the ``held_back`` half and
retain. With training repeats, the first training seed's state is attacked.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from pulse.data.schema import TrainPair
from pulse.protocol.attacks.relearn import RelearnSettings, halves
from pulse.protocol.cells import CellId, Outcomes, Population
from pulse.protocol.config import RunConfig, Scenario, Section
from pulse.protocol.engine import Engine
from pulse.protocol.measure import Measurement, difference_rows, metric_rows
from pulse.protocol.metrics.differences import Comparison
from pulse.protocol.registry import ScenarioType, register_scenario
from pulse.protocol.results import ResultRow
from pulse.protocol.store import content_key
from pulse.report.robustness_figure import robustness_figures
from pulse.report.tables import GENERAL, Column, Layout, Table, mcq_columns

NAME = "robustness"
ATTACKS = ("quantize", "relearn")
TARGETS = ("finetuned", "pretrained", "sequential")  # default: those of them that ran
ATTACKABLE = TARGETS  # (the scope ablation has a state per scope: not attacked yet)
CHANGE = Comparison(
    "attack_change",
    "change under the attack",
    "an attacked state's value minus the same state's unattacked",
)
BEYOND = Comparison(
    "beyond_oracle",
    "beyond the attacked oracle",
    "an attacked state's value minus the oracle's under the same attack",
)


class QuantizeSettings(Section):
    bits: list[Literal[8, 4]] = Field(default_factory=lambda: [8, 4], min_length=1)


class RobustnessScenario(Scenario):
    """Attack the last state of every method of ``targets`` (and their before and oracle)."""

    enabled: bool | None = None  # off unless written: each attack costs an evaluation per state
    attacks: list[Literal["quantize", "relearn"]] = Field(
        default_factory=lambda: list(ATTACKS), min_length=1
    )
    targets: list[str] | None = None  # scenarios whose states are attacked (default: TARGETS)
    quantize: QuantizeSettings = Field(default_factory=QuantizeSettings)
    relearn: RelearnSettings = Field(default_factory=RelearnSettings)
    # The whole section is left out of the config's digest while at its defaults.
    section_added_later: ClassVar[bool] = True

    @model_validator(mode="after")
    def _known_targets(self) -> RobustnessScenario:
        for target in self.targets or ():
            if target not in ATTACKABLE:
                raise ValueError(
                    f"targets: {target!r} has no states to attack (one of: {', '.join(ATTACKABLE)})"
                )
        return self

    def on_by_default(self, config: RunConfig) -> bool:
        return False


def targets(engine: Engine, name: str) -> list[str]:
    spec = engine.config.scenarios[name]
    wanted = spec.targets if spec.targets is not None else list(TARGETS)
    enabled = engine.config.enabled()
    return [t for t in wanted if t in enabled]


def last_states(
    engine: Engine, scenario: str
) -> dict[str, tuple[CellId, Population, dict, Outcomes]]:
    """The last cell of every method of ``scenario`` the engine ran, by method label."""
    found: dict[str, tuple[CellId, Population, dict, Outcomes]] = {}
    for cell, (group, splits, outcomes) in engine.states.items():
        if cell.scenario != scenario or cell.setting == "batch":
            continue
        held = found.get(cell.method)
        if held is None or cell.request > held[0].request:
            found[cell.method] = (cell, group, splits, outcomes)
    return found


class State:
    """A model state by its cache name and its loader."""

    def __init__(self, name: str, load: Callable[[], Any]) -> None:
        self.name = name
        self.load = load


UNATTACKED = "no attack"  # the states as they are (sorted first: the rows the others change)


def robustness_splits(forget: list[str], retain: list[str], seed: int) -> dict[str, list[str]]:
    """The forget set, its relearned and held-back halves, and retain."""
    relearned, held_back = halves(forget, seed)
    return {"forget": forget, "relearned": relearned, "held_back": held_back, "retain": retain}


def _attacks(spec: RobustnessScenario) -> list[str]:
    out = [UNATTACKED]
    for attack in spec.attacks:
        if attack == "quantize":
            out += [f"quantize-{b}" for b in spec.quantize.bits]
        else:
            out.append("relearn")
    return out


def run(engine: Engine, name: str) -> None:
    spec = engine.config.scenarios[name]
    for scenario in targets(engine, name):
        states = last_states(engine, scenario)
        if not states:
            continue
        _, group, chosen, _ = next(iter(states.values()))
        splits = robustness_splits(
            list(chosen["forget"]), list(chosen["retain"]), engine.config.seed
        )
        relearn_pairs = _relearn_pairs(engine, spec, splits["relearned"])
        for attack in _attacks(spec):
            _attack_scenario(
                engine, name, spec, scenario, attack, group, splits, relearn_pairs, states
            )


def _relearn_pairs(
    engine: Engine, spec: RobustnessScenario, people: list[str]
) -> Callable[[], list[TrainPair]]:
    """The relearned people's training pairs, read once per scenario when the first state is
    relearned (and never when none is)."""

    @functools.cache
    def pairs() -> list[TrainPair]:
        assert engine.sources.mllmu is not None  # the targets are MLLMU-Bench scenarios
        return spec.relearn.pairs(engine.sources.mllmu, people, engine.config.seed)

    return pairs


def _attack_scenario(
    engine: Engine,
    name: str,
    spec: RobustnessScenario,
    scenario: str,
    attack: str,
    group: Population,
    splits: dict[str, list[str]],
    relearn_pairs: Callable[[], list[TrainPair]],
    states: dict[str, tuple[CellId, Population, dict, Outcomes]],
) -> None:
    setting = f"{scenario} {attack}"
    people = group.people

    def measure(state: State) -> Measurement:
        return engine.measurer.measure(state.name, state.load, group.config, people)

    def attacked(state: State) -> State:
        return _attacked(engine, spec, scenario, attack, state, splits, relearn_pairs)

    before = State(engine.model_state(group.model), engine.model_loader(group.model))
    oracle = (
        State(engine.model_state(group.oracle), engine.model_loader(group.oracle))
        if group.oracle is not None
        else None
    )
    attacked_oracle: list[Measurement] = []

    def oracle_attacked() -> Measurement | None:
        if oracle is None or attack == UNATTACKED:
            return None
        if not attacked_oracle:
            attacked_oracle.append(measure(attacked(oracle)))
        return attacked_oracle[0]

    def rows_of(cell: CellId, state: State, beyond: bool = True) -> list[ResultRow]:
        if attack == UNATTACKED:  # its change under no attack: 0, so no column is missing
            plain = measure(state)
            return metric_rows(cell, [plain], splits) + difference_rows(
                cell, [plain], [plain], splits, CHANGE
            )
        hit = measure(attacked(state))
        rows = metric_rows(cell, [hit], splits)
        rows += difference_rows(cell, [hit], [measure(state)], splits, CHANGE)
        reference = oracle_attacked() if beyond else None
        if reference is not None:
            rows += difference_rows(cell, [hit], [reference], splits, BEYOND)
        return rows

    stage = f"{name}/{scenario}/{attack.replace(' ', '-')}"
    engine.stage(
        f"{stage}/before",
        lambda: rows_of(CellId.before(name, setting), before),
    )
    if oracle is not None:
        engine.stage(
            f"{stage}/oracle",
            lambda: rows_of(CellId.oracle(name, setting), oracle, beyond=False),
        )
    for method, (cell, _, _, outcomes) in states.items():
        finished = [o for o in outcomes.values() if o.ok]
        target = CellId(name, method, setting, cell.request, cell.requests)
        if not finished:
            engine.stage(f"{stage}/{method}", lambda t=target: [t.status("failed", "no state")])
            continue
        out = finished[0].out_dir
        assert out is not None
        state = State(f"request:{out.name}", engine.model_loader(group.model, out))
        engine.stage(f"{stage}/{method}", lambda t=target, s=state: rows_of(t, s))


def _attacked(
    engine: Engine,
    spec: RobustnessScenario,
    scenario: str,
    attack: str,
    state: State,
    splits: dict[str, list[str]],
    relearn_pairs: Callable[[], list[TrainPair]],
) -> State:
    """``state`` under ``attack``: a new state name (its evaluation's cache key) and loader."""
    if attack.startswith("quantize-"):
        from pulse.protocol.attacks.quantize import backend, quantize

        bits = int(attack.split("-", 1)[1])

        def load_quantized() -> Any:
            model, processor = state.load()
            return quantize(model, processor, bits), processor

        return State(f"{state.name}|{attack}:{backend()}", load_quantized)
    from pulse.protocol.attacks.relearn import relearned

    settings = spec.relearn
    train = settings.train_settings(engine.config.train_of(scenario))
    seed = engine.config.seed
    people = splits["relearned"]

    def load_relearned() -> Any:
        return relearned(state.load, relearn_pairs(), train, seed)

    key = content_key(settings.model_dump(mode="json"), train.identity(), people, seed)
    return State(f"{state.name}|relearn:{key}", load_relearned)


def _pooled_columns(comparison: Comparison, group: str) -> tuple[Column, ...]:
    return tuple(
        Column(f"{comparison.name}_{split}", group, label, split, comparison.name, "all")
        for split, label in (
            ("forget", "forget"),
            ("relearned", "relearned"),
            ("held_back", "held back"),
        )
    )


COLUMNS = (
    *mcq_columns("forget", "Forget accuracy"),
    *mcq_columns("relearned", "Relearned half"),
    *mcq_columns("held_back", "Held-back half"),
    *mcq_columns("retain", "Retain accuracy"),
    *_pooled_columns(CHANGE, "Change under the attack"),
    *_pooled_columns(BEYOND, "Beyond the attacked oracle"),
    GENERAL,
)


def undone(table: Table) -> dict[str, list[str]]:
    """Per method, where an attack undid its forgetting: the attack raised its accuracy on
    forget people (the paired 95 % interval against the same state unattacked above 0) and
    left it above the oracle's under the same attack (that paired interval above 0 too)."""
    found: dict[str, list[str]] = {}
    for row in table.rows:
        if row.is_reference or row.status != "ok":
            continue
        for split in ("forget", "relearned", "held_back"):
            change = row.cells.get(f"{CHANGE.name}_{split}")
            beyond = row.cells.get(f"{BEYOND.name}_{split}")
            if (
                change is not None
                and beyond is not None
                and change.low is not None
                and change.low > 0
                and beyond.low is not None
                and beyond.low > 0
            ):
                found.setdefault(row.method, []).append(
                    f"{row.setting} ({split.replace('_', '-')})"
                )
    return found


def reading(table: Table) -> list[str]:
    """The methods whose forgetting an attack undoes, by name (else that none did)."""
    found = undone(table)
    if not found:
        return [
            "No attack brought a method's forget accuracy back up beyond the oracle's under "
            "the same attack (paired 95 % intervals against the unattacked state and the "
            "attacked oracle)."
        ]
    return [
        f"**{method}**: forgetting undone by " + ", ".join(where) + ": the attack raised its "
        "forget accuracy, above the attacked oracle's (paired 95 % intervals): the knowledge "
        "was hidden, not removed."
        for method, where in found.items()
    ]


register_scenario(
    ScenarioType(
        name=NAME,
        config=RobustnessScenario,
        run=run,
        layout=Layout(
            "Robustness to attacks", COLUMNS, "setting", best_group=lambda row: row.setting
        ),
        reading=reading,
        figures=lambda tables, colours: robustness_figures(tables, colours),
    )
)
