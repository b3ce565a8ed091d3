"""Sequential requests: the finetuned scenario's forget set split into K subsets unlearned one
after another, each request on the adapter the previous one left, against the same data
unlearned in one batch.

Every request's state is measured on the subset just unlearned (``current``), on everything
unlearned so far (``forgotten``), on what is still to come (``pending``) and on the retain
people. The sequential-vs-batch ``gap`` rows pair request K's state with the one-batch state;
the ``contrast`` rows compare the methods where their chains end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from pulse.data.splits import read_split, write_split
from pulse.errors import ConfigError
from pulse.models.collective import from_main
from pulse.protocol import trajectory
from pulse.protocol.cells import CellId, Outcomes, Population, RequestOutcome, Splits
from pulse.protocol.config import MethodEntry, RunConfig, Scenario
from pulse.protocol.engine import Engine
from pulse.protocol.measure import gap_rows
from pulse.protocol.measurement import Measurement
from pulse.protocol.registry import ScenarioType, register_scenario
from pulse.protocol.results import ResultRow
from pulse.protocol.scenarios.finetuned import NAME as FINETUNED
from pulse.protocol.scenarios.finetuned import fictitious, forget_count
from pulse.protocol.sources import mllmu_needs
from pulse.protocol.splits import partition, sequential_splits
from pulse.report.reading import (
    also,
    gap_note,
    most_forgotten,
    most_retained,
    ok_rows,
    overlap_note,
    pct,
    pts,
)
from pulse.report.tables import GENERAL, Layout, Table, mcq_columns

NAME = "sequential"
SEQUENTIAL, BATCH = "sequential", "batch"  # the settings of its rows


class SequentialScenario(Scenario):
    """The finetuned scenario's forget set split into ``requests`` subsets, unlearned one
    after another. ``adapters``: ``continue`` trains one adapter throughout (the reference is
    the initial model); ``merge`` merges it after each request and starts a new one (the
    reference is the model after the previous request). ``batch`` adds the same data in one
    request as the comparison row."""

    requests: int = Field(3, ge=1)
    adapters: Literal["continue", "merge"] = "continue"
    reference: Literal["initial", "previous"] | None = None  # implied by adapters
    batch: bool = True
    # Its own oracle (a local checkpoint); default: the finetuned scenario's (same forget set).
    oracle: Path | None = None
    added_later: ClassVar[tuple[str, ...]] = ("oracle",)
    oracle_of: ClassVar[str | None] = "finetuned"
    oracle_from: ClassVar[str | None] = FINETUNED

    @model_validator(mode="after")
    def _policy(self) -> SequentialScenario:
        implied = "initial" if self.adapters == "continue" else "previous"
        if self.reference is not None and self.reference != implied:
            raise ValueError(
                f"reference {self.reference!r} with adapters {self.adapters!r} is not supported: "
                "continue uses the initial model as reference, merge the previous request's model"
            )
        return self

    def check(self, config: RunConfig) -> None:
        # Refused here, before a run directory exists, when the config fixes the count (the
        # people given, or the world's size); else check_data does, before any split.
        self._enough_people(forget_count(config))

    def check_data(self, config: RunConfig, sources: Any) -> None:
        counted = forget_count(config, sources.mllmu)
        try:
            self._enough_people(counted)
        except ValueError as exc:
            raise ConfigError(f"scenarios.{NAME}.{exc}") from None

    def _enough_people(self, counted: tuple[int, str] | None) -> None:
        if counted is not None and self.requests > counted[0]:
            raise ValueError(
                f"requests: {self.requests} asked for, but the finetuned forget set has "
                f"{counted[0]} people ({counted[1]})"
            )

    @property
    def reference_policy(self) -> Literal["initial", "previous"]:
        return "initial" if self.adapters == "continue" else "previous"


def previous_state(out: Path) -> Path:
    """The state a finished request left for the next one: its weight edit (a training-free
    method) when it made one, else its adapter."""
    from pulse.methods.request import ADAPTER_DIR, EDIT_DIR
    from pulse.models.edits import is_edit_dir

    return out / EDIT_DIR if is_edit_dir(out / EDIT_DIR) else out / ADAPTER_DIR


def run(engine: Engine, name: str) -> None:
    spec = engine.config.scenarios[name]
    group, forget, retain = fictitious(engine, name)
    subsets = _subsets(engine, forget, spec.requests)
    k = len(subsets)
    engine.before(name, group, {**sequential_splits(subsets, 0), "retain": retain}, requests=k)
    # The oracle never learned any subset: its "forgotten so far" is the whole forget set, and
    # each request's state is compared with it on the people forgotten by then.
    oracle_splits = {"forget": forget, "forgotten": forget, "retain": retain}
    engine.oracle(name, group, oracle_splits, requests=k)
    ends: dict[CellId, Outcomes] = {}
    batches: dict[str, Outcomes] = {}
    for entry in engine.config.methods_of(name):
        last = _chain(engine, name, entry, group, subsets, retain, spec.reference_policy)
        ends[CellId(name, entry.name, SEQUENTIAL, request=k, requests=k)] = last
        if spec.batch:
            cell = CellId(name, entry.name, BATCH)
            splits = {"forget": forget, "forgotten": forget, "retain": retain}
            stage = f"{name}/batch/{entry.name}"
            _, batch = engine.request_stage(stage, cell, group, splits, entry, forget, retain)
            batches[entry.name] = batch
            _gap(engine, name, entry, group, k, last, batch, {"forget": forget, "retain": retain})
    # Where the methods end after the last request, compared with each other.
    engine.contrasts(f"{name}/contrasts", group, {"forget": forget, "retain": retain}, ends)
    methods = [e.name for e in engine.config.methods_of(name)]
    _matched(engine, name, group, {"forget": forget, "retain": retain}, k, methods, batches)


def _matched(
    engine: Engine,
    name: str,
    group: Population,
    splits: Splits,
    k: int,
    methods: list[str],
    batches: dict[str, Outcomes],
) -> None:
    """Sequential against one batch at matched forgetting, pooled over the training seeds
    (:mod:`pulse.protocol.trajectory`): a chain's path is each of its requests' points and
    own state in order, on the whole forget set, its steps counted over the chain (a request
    evaluated along nothing gives its own state alone); the batch's is its points (the
    finetuned scenario's request, reused). Placed when a request was evaluated along the way.
    General capability where every point measured it (``train.eval_general``)."""
    general = engine.config.train_of(name).eval_general
    chains: dict[CellId, list[list[RequestOutcome]]] = {}
    ones: dict[CellId, list[RequestOutcome]] = {}
    order: list[CellId] = []
    for method in methods:
        chain_cell = CellId(name, method, SEQUENTIAL, request=k, requests=k)
        order += [chain_cell, CellId(name, method, BATCH)]
        cells = [CellId(name, method, SEQUENTIAL, request=r, requests=k) for r in range(1, k + 1)]
        for seed in engine.training_seeds:
            chain = [engine.states[cell][2].get(seed) for cell in cells]
            if all(o is not None and o.ok for o in chain):
                chains.setdefault(chain_cell, []).append(chain)  # type: ignore[arg-type]
            outcome = batches.get(method, {}).get(seed)
            if outcome is not None and outcome.ok:
                ones.setdefault(CellId(name, method, BATCH), []).append(outcome)
    requests = [o for runs in chains.values() for chain in runs for o in chain]
    requests += [o for runs in ones.values() for o in runs]
    if not any(trajectory.evaluated_along(o) for o in requests):
        return

    def compute() -> list[ResultRow]:
        target, source = trajectory.target_of(engine, name, group, splits)
        oracle = engine.measure_oracle(group)
        found: dict[CellId, list[tuple[list[int], list[Measurement]]]] = {}
        for cell, runs in chains.items():
            for chain in runs:
                if (path := trajectory.chain_path(engine, chain, group, general)) is not None:
                    found.setdefault(cell, []).append(path)
        for cell, outcomes in ones.items():
            for outcome in outcomes:
                if (whole := trajectory.request_path(engine, outcome, group, general)) is not None:
                    found.setdefault(cell, []).append(whole[:2])
        rows: list[ResultRow] = []
        for cell in (c for c in order if c in found):
            at = trajectory.path_at_target(
                found[cell], splits, target, oracle, seed=engine.config.seed
            )
            if at is not None:
                rows += trajectory.matched_to_rows(cell, at, source)
        return rows

    engine.stage(f"{name}/matched", compute)


def _chain(
    engine: Engine,
    name: str,
    entry: MethodEntry,
    group: Population,
    subsets: list[list[str]],
    retain: list[str],
    reference: str,
) -> Outcomes:
    """Requests 1..K of one method, each on the adapter the previous one left (a chain per
    training seed); returns every seed's last request (``failed`` when its chain stopped)."""
    k = len(subsets)
    previous: Outcomes = {}
    # Evaluated along each request when the scenario's training asks for it, on the whole
    # forget set (every request's ``forget`` split): one continuous path over the chain. A
    # chain's request does not stop early (its level is the whole forget set's).
    settings = entry.train(engine.config.train_of(name)).model_copy(update={"stop_at": None})
    # Each request's points count their steps on from the chain's earlier requests (by
    # training seed; the request's directory names its offset for its rows).
    done: dict[int, int] = {}
    offsets: dict[Path, int] = {}
    for r in range(1, k + 1):
        cell = CellId(name, entry.name, SEQUENTIAL, request=r, requests=k)
        splits = {**sequential_splits(subsets, r), "retain": retain}
        along = trajectory.along(engine, name, group, splits, settings)

        def train(
            seed: int,
            r: int = r,
            earlier: Outcomes = previous,
            along: trajectory.Along | None = along,
        ) -> RequestOutcome:
            before = earlier.get(seed)
            if r > 1 and (before is None or not before.ok):
                return RequestOutcome("failed", None, f"request {r - 1} did not finish")
            # Cached by its inputs: on resume this reads the finished request back.
            outcome = engine.request(
                group.model,
                subsets[r - 1],
                retain,
                entry,
                name,
                adapter=previous_state(before.out_dir) if before and before.out_dir else None,
                reference=reference,
                seed=seed,
                along=along,
            )
            if outcome.out_dir is not None:
                offsets[outcome.out_dir] = done.get(seed, 0)
            return outcome

        def rows(
            outcome: RequestOutcome,
            cell: CellId = cell,
            splits: Splits = splits,
            along: trajectory.Along | None = along,
        ) -> list[ResultRow]:
            offset = offsets.get(outcome.out_dir, 0) if outcome.out_dir else 0
            return engine.after(cell, outcome, group, splits, along, offset)

        _, previous = engine.cell_stage(
            f"{name}/sequential/{entry.name}/{r}",
            cell,
            train,
            rows,
            lambda outcomes, cell=cell, splits=splits: engine.pooled(cell, outcomes, group, splits),
        )
        engine.states[cell] = (group, splits, previous)
        for seed, outcome in previous.items():
            if outcome.ok and outcome.out_dir is not None:
                done[seed] = done.get(seed, 0) + _steps(outcome.out_dir)
    return previous


def _steps(out: Path) -> int:
    """The optimizer steps a finished request took (its ``result.json``)."""
    from pulse.methods.request import RequestResult

    return RequestResult.read(out).steps


def _gap(
    engine: Engine,
    name: str,
    entry: MethodEntry,
    group: Population,
    k: int,
    last: Outcomes,
    batch: Outcomes,
    splits: Splits,
) -> None:
    """The sequential-vs-batch gap of one method: request K's state against the one-batch
    state, paired on the same people and questions (both evaluations are cached) and, with
    several training seeds, seed by seed: a gap stage per seed and one pooling them. Seeds
    where either side did not finish have no gap."""
    cell = CellId(name, entry.name, SEQUENTIAL, request=k, requests=k)
    seeds = [s for s in engine.training_seeds if last[s].ok and batch[s].ok]
    if not seeds:
        return

    def compute(chosen: list[int]) -> list[ResultRow]:
        later = [engine.measure_request(last[s], group) for s in chosen]
        earlier = [engine.measure_request(batch[s], group) for s in chosen]
        return gap_rows(cell, later, earlier, splits)

    stage = f"{name}/gap/{entry.name}"
    if engine.config.repeats > 1:
        engine.seed_stages(stage, seeds, lambda seed: compute([seed]))
    engine.stage(stage, lambda: compute(seeds))


def _subsets(engine: Engine, forget: list[str], k: int) -> list[list[str]]:
    """The sequence's subsets of the forget set, saved in the run directory (by rank 0)."""
    folder, seed = engine.store.path("splits", NAME), engine.config.seed
    return from_main(lambda: _saved_subsets(folder, forget, k, seed))


def _saved_subsets(folder: Path, forget: list[str], k: int, seed: int) -> list[list[str]]:
    files = [folder / f"request_{i}.txt" for i in range(1, k + 1)]
    if all(f.is_file() for f in files):
        return [read_split(f) for f in files]
    subsets = partition(forget, k, seed)
    for f, subset in zip(files, subsets, strict=True):
        write_split(f, subset)
    return subsets


# --- report -----------------------------------------------------------------------------------

COLUMNS = (
    *mcq_columns("forget", "Forget accuracy"),
    *mcq_columns("forgotten", "Forgotten so far"),
    *mcq_columns("retain", "Retain accuracy"),
    GENERAL,
)
# Sequential rows compete with the other methods at the same request, batch rows together.
LAYOUT = Layout(
    "Sequential requests against one batch",
    COLUMNS,
    None,
    (SEQUENTIAL, BATCH),
    lambda row: (row.setting, row.request),
)


def reading(table: Table) -> list[str]:
    out = []
    for method in dict.fromkeys(r.method for r in table.method_rows):
        rows = [r for r in table.method_rows if r.method == method]
        chain = sorted((r for r in rows if r.requests > 1), key=lambda r: r.request)
        batch = next((r for r in rows if r.requests <= 1 and r.status == "ok"), None)
        stopped = next((r for r in chain if r.status != "ok"), None)
        if stopped:
            out.append(
                f"In {table.scenario}, {method} has no result after request {stopped.request} of "
                f"{stopped.requests} ({stopped.status}), so its sequential run is incomplete."
            )
            continue
        if not chain or not batch:
            continue
        last = chain[-1]
        general = (last.value("general"), batch.value("general"))
        if None not in general:
            note = gap_note(table, method, "general", "all") or overlap_note(last, batch, "general")
            out.append(
                f"After {last.requests} sequential requests, {method} keeps "
                f"{pct(general[0])} general capability against {pct(general[1])} when the "
                f"same data is unlearned in one batch ({(general[0] - general[1]) * 100:+.1f} "
                f"points{also(note, '; ')})."
            )
        for column in table.columns:
            if column.split != "forget":
                continue
            forget = (last.value(column.key), batch.value(column.key))
            if None not in forget:
                note = gap_note(table, method, "forget", column.modality or "all")
                note = note or overlap_note(last, batch, column.key)
                out.append(
                    f"Its {column.label} forget accuracy ends at {pct(forget[0])} sequentially "
                    f"against {pct(forget[1])} in one batch{also(note, ' (', ')')}."
                )
                break
    return out + _chain_ends(table)


def _chain_ends(table: Table) -> list[str]:
    """Which method ends its chain of requests having forgotten the most, and which keeps the
    most retain accuracy, each against the runner-up (by their paired contrast when the run
    measured it)."""
    ends = {
        r.method: r
        for r in ok_rows(table.method_rows)
        if r.requests > 1 and r.request == r.requests
    }
    if len(ends) < 2:
        return []
    k = next(iter(ends.values())).requests
    out = []
    if forgotten := most_forgotten(table, ends):
        leader, drop, note = forgotten
        out.append(
            f"After {k} sequential requests, {leader} has forgotten the most: forget accuracy "
            f"fell by {pts(drop)} on average over both modalities{note}."
        )
    if kept := most_retained(table, ends):
        leader, value, note = kept
        out.append(
            f"After {k} sequential requests, {leader} keeps the most retain accuracy: "
            f"{pct(value)} on average{note}."
        )
    return out


NO_ORACLE = (
    "the run's models are local checkpoints and none of scenarios.sequential.oracle, "
    "scenarios.finetuned.oracle and models.oracle names one (the fine-tuned model's recipe "
    "without the forget set: pulse finetune --exclude), or its rows were written before "
    "oracles existed"
)


register_scenario(
    ScenarioType(
        name=NAME,
        config=SequentialScenario,
        run=run,
        layout=LAYOUT,
        reading=reading,
        needs=lambda config, sources: mllmu_needs(config, sources, "models.finetuned", NAME),
        no_oracle=NO_ORACLE,
    )
)
