"""Robustness: does a state's forgetting survive quantization and relearning?

Runs after every other scenario, on the states they left: the last state of every method's
request or chain, under every training seed, of the ``targets`` (by default the finetuned
scenario; any of the finetuned, pretrained, sequential and scope scenarios that ran, each
scope of the ablation on its own; ``before`` and the oracle of each get the same attacks as
references). On by default for the embedded world, off for local checkpoints. Each attacked state is
a stage of its own (``robustness/<scenario>/<attack>/<method>``, with ``repeat-<r>`` stages
per training seed as a request's), resumable like any other; its evaluation is cached under a
state name that holds the attack and its settings.

An attacked state is scored on what the table reads only: its forget people's questions (the
relearned and held-back halves are theirs), without the general set or the retain people, with
the run's kept encodings (every attacked state asks the same questions). The unattacked state's
own evaluation, already in the run, is the reference its changes are paired against.

Rows (scenario ``robustness``, setting ``<scenario> <attack>``, for a scope
``scope/<scope> <attack>``): the attacked state's accuracy on the forget people and both
halves, each change paired against the same state *unattacked*; and ``beyond_oracle`` rows:
the attacked state minus the oracle under the same attack, on the same questions, with its
paired interval. Attacks: ``quantize-8`` / ``quantize-4``
(:mod:`pulse.protocol.attacks.quantize`); ``relearn`` (:mod:`pulse.protocol.attacks.relearn`)
fine-tunes on the ``relearned`` half, then asks it and the ``held_back`` half.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar, Literal

from pydantic import Field, model_serializer, model_validator

from pulse.data.schema import TrainPair
from pulse.protocol.attacks.quantize import Backend
from pulse.protocol.attacks.relearn import RelearnSettings, halves
from pulse.protocol.cells import CellId, Outcomes, Population, RequestOutcome
from pulse.protocol.config import RunConfig, Scenario, Section
from pulse.protocol.engine import Engine
from pulse.protocol.measure import Measurement, difference_rows, metric_rows
from pulse.protocol.metrics.differences import Comparison
from pulse.protocol.registry import ScenarioType, register_scenario
from pulse.protocol.results import ResultRow
from pulse.protocol.scenarios.finetuned import NAME as FINETUNED
from pulse.protocol.scenarios.scope import NAME as SCOPE
from pulse.protocol.scenarios.sequential import BATCH
from pulse.protocol.store import content_key
from pulse.report.robustness_figure import robustness_figures
from pulse.report.tables import Column, Layout, Table, mcq_columns

NAME = "robustness"
ATTACKS = ("quantize", "relearn")
# Scenarios whose states can be attacked.
TARGETS = (FINETUNED, "pretrained", "sequential", SCOPE)
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
    # The library that quantizes (pulse.protocol.attacks.quantize): auto is bitsandbytes on
    # CUDA, torchao on CPU.
    backend: Backend = "auto"

    @model_serializer(mode="wrap")
    def _backend_when_chosen(self, dump: Any) -> dict[str, Any]:
        # Added later: at its default it is left out, so earlier run directories resume.
        data = dump(self)
        if data.get("backend") == "auto":
            del data["backend"]
        return data


class RobustnessScenario(Scenario):
    """Attack the last state of every method of ``targets`` (and their before and oracle)."""

    # None: on for the embedded world (its tiny models attack in about a minute:
    # docs/benchmarks.md), off for local checkpoints (an attacked state of a real model costs
    # about half an evaluation per attack).
    enabled: bool | None = None
    attacks: list[Literal["quantize", "relearn"]] = Field(
        default_factory=lambda: list(ATTACKS), min_length=1
    )
    # Scenarios whose states are attacked: by default the finetuned scenario's (the one whose
    # oracle every attack is read against); None: every one of TARGETS that ran.
    targets: list[str] | None = Field(default_factory=lambda: [FINETUNED])
    quantize: QuantizeSettings = Field(default_factory=QuantizeSettings)
    relearn: RelearnSettings = Field(default_factory=RelearnSettings)
    # The whole section is left out of the config's digest while at its defaults.
    section_added_later: ClassVar[bool] = True

    @model_validator(mode="after")
    def _known_targets(self) -> RobustnessScenario:
        for target in self.targets or ():
            if target not in TARGETS:
                raise ValueError(
                    f"targets: {target!r} has no states to attack (one of: {', '.join(TARGETS)})"
                )
        return self

    def on_by_default(self, config: RunConfig) -> bool:
        return config.models.world is not None


def targets(engine: Engine, name: str) -> list[str]:
    spec = engine.config.scenarios[name]
    wanted = spec.targets if spec.targets is not None else list(TARGETS)
    enabled = engine.config.enabled()
    return [t for t in wanted if t in enabled]


Last = tuple[CellId, Population, dict, Outcomes]


def last_states(engine: Engine, scenario: str) -> dict[str, dict[str, Last]]:
    """The last cell of every method of ``scenario`` the engine ran, by where it stands (the
    scenario; for the scope ablation ``scope/<scope>``, one per scope) and method label."""
    found: dict[str, dict[str, Last]] = {}
    for cell, (group, splits, outcomes) in engine.states.items():
        if cell.scenario != scenario or cell.setting == BATCH:
            continue
        where = f"{scenario}/{cell.setting}" if scenario == SCOPE else scenario
        methods = found.setdefault(where, {})
        held = methods.get(cell.method)
        if held is None or cell.request > held[0].request:
            methods[cell.method] = (cell, group, splits, outcomes)
    return found


class State:
    """A model state by its cache name and its loader."""

    def __init__(self, name: str, load: Callable[[], Any]) -> None:
        self.name = name
        self.load = load


UNATTACKED = "no attack"  # the states as they are (sorted first: the rows the others change)


def robustness_splits(forget: list[str], seed: int) -> dict[str, list[str]]:
    """The forget set and its relearned and held-back halves."""
    relearned, held_back = halves(forget, seed)
    return {"forget": forget, "relearned": relearned, "held_back": held_back}


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

    @functools.cache
    def pairs_of(people: tuple[str, ...]) -> list[TrainPair]:
        # The relearned people's training pairs: read once per forget set, when the first
        # state is relearned (and never when none is).
        assert engine.sources.mllmu is not None  # the targets are MLLMU-Bench scenarios
        return spec.relearn.pairs(engine.sources.mllmu, list(people), engine.config.seed)

    for scenario in targets(engine, name):
        for where, states in last_states(engine, scenario).items():
            _, group, chosen, _ = next(iter(states.values()))
            splits = robustness_splits(list(chosen["forget"]), engine.config.seed)
            target = Target(engine, name, scenario, where, group, splits)

            relearn_pairs = functools.partial(pairs_of, tuple(splits["relearned"]))
            for attack in _attacks(spec):
                target.attack(attack, relearn_pairs, states)


class Target:
    """The states of one scenario (one scope of the ablation) and their references, attacked."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        scenario: str,
        where: str,
        group: Population,
        splits: dict[str, list[str]],
    ) -> None:
        self.engine = engine
        self.name = name
        self.spec: RobustnessScenario = engine.config.scenarios[name]
        self.scenario = scenario
        self.where = where
        self.group = group
        self.splits = splits

    def plain(self, state: State) -> Measurement:
        """The state unattacked: its own evaluation in the run (cached), less the general set
        (not compared here)."""
        group = self.group
        measured = self.engine.measurer.measure(state.name, state.load, group.config, group.people)
        return replace(measured, general=None)

    def hit(self, state: State) -> Measurement:
        """An attacked state on its forget people's questions only, no general set."""
        forget = self.splits["forget"]
        measurer = self.engine.measurer
        return measurer.measure(state.name, state.load, self.group.config, forget, general=False)

    def attack(
        self,
        attack: str,
        relearn_pairs: Callable[[], list[TrainPair]],
        states: dict[str, Last],
    ) -> None:
        engine, group, splits = self.engine, self.group, self.splits
        setting = f"{self.where} {attack}"

        def attacked(state: State) -> State:
            return _attacked(engine, self.spec, self.scenario, attack, state, splits, relearn_pairs)

        before = State(engine.model_state(group.model), engine.model_loader(group.model))
        oracle = (
            State(engine.model_state(group.oracle), engine.model_loader(group.oracle))
            if group.oracle is not None
            else None
        )

        @functools.cache
        def oracle_attacked() -> Measurement | None:
            if oracle is None or attack == UNATTACKED:
                return None
            return self.hit(attacked(oracle))

        def rows_of(cell: CellId, seeds: list[State], beyond: bool = True) -> list[ResultRow]:
            """The rows of one state (or of one cell's training seeds, pooled)."""
            plain = [self.plain(s) for s in seeds]
            if attack == UNATTACKED:  # its change under no attack is 0, and the oracle
                # under no attack is the oracle as it is: no column is left empty
                rows = metric_rows(cell, plain, splits)
                rows += difference_rows(cell, plain, plain, splits, CHANGE)
                if beyond and oracle is not None:
                    reference = self.plain(oracle)
                    rows += difference_rows(cell, plain, [reference] * len(plain), splits, BEYOND)
                return rows
            hits = [self.hit(attacked(s)) for s in seeds]
            rows = metric_rows(cell, hits, splits)
            rows += difference_rows(cell, hits, plain, splits, CHANGE)
            reference = oracle_attacked() if beyond else None
            if reference is not None:
                rows += difference_rows(cell, hits, [reference] * len(hits), splits, BEYOND)
            return rows

        stage = f"{self.name}/{self.where}/{attack.replace(' ', '-')}"
        engine.stage(
            f"{stage}/before", lambda: rows_of(CellId.before(self.name, setting), [before])
        )
        if oracle is not None:
            engine.stage(
                f"{stage}/oracle",
                lambda: rows_of(CellId.oracle(self.name, setting), [oracle], beyond=False),
            )

        def state_of(outcome: RequestOutcome) -> State:
            assert outcome.out_dir is not None
            out = outcome.out_dir
            return State(f"request:{out.name}", engine.model_loader(group.model, out))

        def seed_rows(t: CellId, outcome: RequestOutcome) -> list[ResultRow]:
            if not outcome.ok:
                return [t.status("failed", "no state")]
            return rows_of(t, [state_of(outcome)])

        def pooled(t: CellId, finished: list[RequestOutcome]) -> list[ResultRow]:
            return rows_of(t, [state_of(o) for o in finished])

        for method, (cell, _, _, outcomes) in states.items():
            target = CellId(self.name, method, setting, cell.request, cell.requests)
            # Every training seed's state, as the cell's request stage has them.
            engine.cell_stage(
                f"{stage}/{method}",
                target,
                functools.partial(_outcome, outcomes),
                functools.partial(seed_rows, target),
                functools.partial(pooled, target),
            )


def _outcome(outcomes: Outcomes, seed: int) -> RequestOutcome:
    """A training seed's outcome of a cell's request (failed when it has none)."""
    return outcomes.get(seed) or RequestOutcome("failed", None, "no state")


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
        library = spec.quantize.backend

        def load_quantized() -> Any:
            model, processor = state.load()
            return quantize(model, bits, library), processor

        return State(f"{state.name}|{attack}:{backend(library)}", load_quantized)
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
    *_pooled_columns(CHANGE, "Change under the attack"),
    *_pooled_columns(BEYOND, "Beyond the attacked oracle"),
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
