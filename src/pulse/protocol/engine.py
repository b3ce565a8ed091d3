"""The protocol's engine: stages, cells, training seeds, the request cache, measuring and
paired contrasts. Scenarios (:mod:`pulse.protocol.scenarios`) are built from these parts; the
engine holds none of them.

A stage is one cell of the results (a scenario's before row, one method's request, one request
of a sequence). Finished stages are read back on a re-run; a request that blows up (diverged or
raised) becomes a status row and the run goes on. Requests are cached by everything that
determines them, so the sequential scenario's one-batch comparison and the scope ablation's LLM
row reuse the finetuned scenario's request when their settings match.

With ``repeats`` above 1 a cell trains its request under every training seed: a stage per seed
(``<cell's stage>/repeat-<r>``, rows tagged with the repeat) and the cell's own stage, which
pools the seeds that finished (:func:`pulse.protocol.measure.metric_rows`). A sequence of
requests runs one chain per seed.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from pulse.data.schema import TrainPair
from pulse.data.splits import read_split, write_split
from pulse.errors import ModelError
from pulse.models import collective
from pulse.models.device import resolve_device, trainer_device
from pulse.protocol import generalisation, trajectory
from pulse.protocol.cells import CellId, Outcomes, Population, RequestOutcome, Splits
from pulse.protocol.config import MethodEntry, RunConfig, ScopeConfig
from pulse.protocol.measure import Measurement, Measurer, contrast_rows, metric_rows
from pulse.protocol.privacy import PairPlan, privacy_plan
from pulse.protocol.results import ResultRow
from pulse.protocol.sources import Sources
from pulse.protocol.store import RunStore, content_key

if TYPE_CHECKING:
    from pulse.methods.request import RequestResult

PairsOf = Callable[[], tuple[Sequence[TrainPair], Sequence[TrainPair]]]


class Interrupt(Exception):
    """Raised by a test hook to simulate a crash between stages."""


class Engine:
    def __init__(
        self,
        config: RunConfig,
        store: RunStore,
        sources: Sources,
        *,
        progress: bool = True,
        stop_after: int | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.config = config
        self.device = device or resolve_device()
        self.store = store
        self.sources = sources
        self.progress = progress
        self.measurer = Measurer(
            store,
            config.eval,
            sources.mllmu,
            sources.mmbench if config.eval.general else None,
            config.seed,
        )
        # Every state also on its people's Test_Set questions (pulse.protocol.generalisation).
        self.generalisation = generalisation.Generalisation(self)
        # Every request cell run so far, with its people, splits and requests (the robustness
        # scenario attacks the last state of each method).
        self.states: dict[CellId, tuple[Population, Splits, Outcomes]] = {}
        self._stop_after = stop_after  # test hook: raise Interrupt after this many new stages
        self._measured: tuple[str, Callable[[], Any]] | None = None  # see state()
        self._new_stages = 0
        self._current: str | None = None
        if not progress:
            # Every request and evaluation loads a model; its per-load bar would flood the log.
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()

    @property
    def training_seeds(self) -> list[int]:
        return self.config.training_seeds()

    # --- stages -----------------------------------------------------------------------------

    def stage(self, name: str, compute: Callable[[], Sequence[ResultRow]]) -> list[ResultRow]:
        if self.store.is_done(name):
            return self.store.stage_rows(name)
        self.say(f"[{name}]")
        self._current = name
        try:
            rows = self.store.run_stage(name, compute)
        finally:
            self._current = None
        self._new_stages += 1
        if self._stop_after is not None and self._new_stages >= self._stop_after:
            raise Interrupt(f"stopped after {self._new_stages} stages")
        return rows

    def say(self, text: str) -> None:
        if self.progress and collective.is_main():
            print(text, flush=True)

    def cell_stage(
        self,
        stage: str,
        cell: CellId,
        train: Callable[[int], RequestOutcome],
        rows_of: Callable[[RequestOutcome], list[ResultRow]],
        pool: Callable[[list[RequestOutcome]], list[ResultRow]],
    ) -> tuple[list[ResultRow], Outcomes]:
        """A cell's stage(s): ``train(seed)`` under every training seed, ``rows_of`` its
        outcome (a status row when it did not finish); with several seeds each is a stage of
        its own (rows tagged with the repeat) and ``pool`` turns the finished ones into the
        cell's rows. Returns those rows and the outcome of every seed (reused from the request
        cache when finished; ``failed`` otherwise)."""
        seeds = self.training_seeds
        if len(seeds) == 1:
            rows = self.stage(stage, lambda: rows_of(train(seeds[0])))
            return rows, {seeds[0]: _finished(rows, train, seeds[0])}
        per_seed = self.seed_stages(stage, seeds, lambda seed: rows_of(train(seed)))
        outcomes = {seed: _finished(per_seed[seed], train, seed) for seed in seeds}

        def pooled() -> list[ResultRow]:
            finished = [o for o in outcomes.values() if o.ok]
            if finished:
                return pool(finished)
            return [cell.status("failed", f"no training seed of {len(seeds)} finished")]

        return self.stage(stage, pooled), outcomes

    def seed_stages(
        self, stage: str, seeds: Sequence[int], rows_for: Callable[[int], list[ResultRow]]
    ) -> dict[int, list[ResultRow]]:
        """A stage per training seed of ``seeds`` (``<stage>/repeat-<r>``, ``r`` the seed's
        place among the run's seeds), its rows marked with that repeat."""
        repeats = {seed: r for r, seed in enumerate(self.training_seeds)}
        return {
            seed: self.stage(
                f"{stage}/repeat-{repeats[seed]}",
                lambda seed=seed: [replace(x, repeat=repeats[seed]) for x in rows_for(seed)],
            )
            for seed in seeds
        }

    # --- splits -----------------------------------------------------------------------------

    def saved_split(self, name: str) -> tuple[list[str], list[str]] | None:
        folder = self.store.path("splits", name)

        def read() -> tuple[list[str], list[str]] | None:
            if (folder / "forget.txt").is_file() and (folder / "retain.txt").is_file():
                return read_split(folder / "forget.txt"), read_split(folder / "retain.txt")
            return None

        return collective.from_main(read)

    def save_split(
        self, name: str, forget: list[str], retain: list[str]
    ) -> tuple[list[str], list[str]]:
        folder = self.store.path("splits", name)

        def write() -> None:
            write_split(folder / "retain.txt", retain)
            write_split(folder / "forget.txt", forget)  # written last: its presence means complete

        collective.from_main(write)
        return forget, retain

    # --- models and requests ----------------------------------------------------------------

    def model_loader(self, model_dir: Path, request_dir: Path | None = None) -> Callable[[], Any]:
        def load() -> Any:
            device = str(self.device) if self.device.type != "cpu" else None
            if request_dir is not None:
                from pulse.methods.request import load_unlearned

                # Evaluated merged: the same model, without the adapter layers' cost.
                return load_unlearned(
                    request_dir, dtype=self.config.models.dtype, device=device, merged=True
                )
            from pulse.models.loading import load_model_and_processor

            model, processor = load_model_and_processor(
                model_dir, dtype=self.config.models.dtype, device=device
            )
            model.eval()
            return model, processor

        return load

    def request(
        self,
        model_dir: Path,
        forget: Sequence[str],
        retain: Sequence[str],
        entry: MethodEntry,
        scenario: str,
        *,
        scope: ScopeConfig | None = None,
        adapter: Path | None = None,
        reference: str = "initial",
        pairs: PairsOf | None = None,
        seed: int | None = None,
        along: trajectory.Along | None = None,
    ) -> RequestOutcome:
        """Run (or reuse) one unlearning request, trained under ``seed`` (default: the run's);
        never raises for a failing method. ``along`` evaluates it while it trains
        (``train.eval_every``; early stopping at its level, ``train.stop_at``)."""
        from pulse.methods.request import RequestResult, run_request, train_pairs

        seed = self.config.seed if seed is None else seed
        train = entry.train(self.config.train_of(scenario))
        # Early stopping is part of a request's identity as the level it stops at; a request
        # evaluated along nothing cannot stop early.
        train = train.model_copy(update={"stop_at": along.stop if along else None})
        scope = scope or train.scope
        key = content_key(
            self.where(model_dir),
            self.where(adapter) if adapter else None,
            sorted(forget),
            sorted(retain),
            entry.method,
            entry.params,
            train.identity(without=frozenset({"scope"})),
            scope.model_dump(mode="json"),
            reference,
            seed,
        )
        out = self.store.path("requests", key)
        # None too when damaged: it runs again.
        finished = collective.from_main(lambda: RequestResult.finished(out))
        if finished is not None:
            return _outcome(finished, seed, reused=True)
        self._measured = None  # a request trains its own copy: the measured state lets go
        failure: Exception | None = None
        try:
            if pairs is not None:
                forget_pairs, retain_pairs = pairs()
            else:
                forget_pairs = train_pairs(self.sources.mllmu, forget)
                retain_pairs = train_pairs(self.sources.mllmu, retain)
            result = run_request(
                model_dir,
                forget_pairs,
                retain_pairs,
                entry.method,
                entry.params,
                out,
                train=train.model_copy(update={"scope": scope}),
                seed=seed,
                forget_ids=forget,
                retain_ids=retain,
                adapter=adapter,
                reference=reference,  # type: ignore[arg-type]
                dtype=self.config.models.dtype,
                progress=self.progress,
                trainer_args=trainer_device(self.device),
                points=along.plan(out) if along is not None else None,
            )
        except (KeyboardInterrupt, Interrupt):
            raise
        except Exception as exc:  # one failing method must not stop the run
            failure, trace = exc, traceback.format_exc()
        # Every process trained the request together: they agree on how it ended, and the
        # others read rank 0's adapter only once it is written.
        failed = collective.gathered(failure is not None)
        if any(failed) and not all(failed):
            which = [r for r, f in enumerate(failed) if f]
            raise ModelError(
                f"request {key} failed in process(es) {which} only: the run stops here "
                "(run the same command again to resume)"
            ) from failure
        if failure is None:
            return _outcome(result, seed)

        def record() -> None:
            (out / "error.txt").parent.mkdir(parents=True, exist_ok=True)
            (out / "error.txt").write_text(trace, encoding="utf-8")

        collective.from_main(record)
        reason = str(failure).splitlines()[0] if str(failure) else ""
        return RequestOutcome("failed", None, f"{type(failure).__name__}: {reason}".rstrip(": "))

    # --- measuring --------------------------------------------------------------------------

    def where(self, path: Path) -> str:
        """``path`` as the cache keys name it: relative to the run directory when inside it
        (a run directory moved elsewhere keeps its finished requests and evaluations),
        absolute otherwise."""
        resolved = Path(path).resolve()
        root = self.store.root.resolve()
        if resolved.is_relative_to(root):
            return f"run:{resolved.relative_to(root).as_posix()}"
        return str(resolved)

    def model_state(self, model_dir: Path) -> str:
        """The evaluation cache's name of the model at ``model_dir`` (no request applied)."""
        return f"model:{self.where(model_dir)}"

    def state(
        self, model_dir: Path, request_dir: Path | None = None
    ) -> tuple[str, Callable[[], Any]]:
        """A model state's stable name (its evaluations' cache key) and its loader, which loads
        it at most once while it is the state being measured: the MCQ evaluation, the pair
        scores and the Test_Set questions of one state share one load. Not for attacks, which
        change the model they load."""
        name = f"request:{request_dir.name}" if request_dir else self.model_state(model_dir)
        if self._measured is None or self._measured[0] != name:
            self._measured = (name, _once(self.model_loader(model_dir, request_dir)))
        return self._measured

    def measure_model(
        self, group: Population, plan: PairPlan | None = None, reference: Path | None = None
    ) -> Measurement:
        """The model ``group.model`` on the group's people (evaluated once, then cached); with
        ``plan``, its membership-inference scores too (beside ``reference``'s loss)."""
        state, load = self.state(group.model)
        measured = self.measurer.measure(state, load, group.config, group.people)
        return self._with_pairs(measured, state, load, plan, reference)

    def measure_request(
        self, outcome: RequestOutcome, group: Population, plan: PairPlan | None = None
    ) -> Measurement:
        """The model a finished request left, on the group's people (cached like any state);
        with ``plan``, its membership-inference scores too, beside the before model's loss."""
        assert outcome.out_dir is not None
        state, load = self.state(group.model, outcome.out_dir)
        measured = self.measurer.measure(state, load, group.config, group.people)
        return self._with_pairs(measured, state, load, plan, group.model)

    def measure_oracle(self, group: Population, plan: PairPlan | None = None) -> Measurement | None:
        """The group's oracle on its people (cached like any state), when it has one."""
        oracle = group.of_oracle()
        return None if oracle is None else self.measure_model(oracle, plan, group.model)

    def _with_pairs(
        self,
        measured: Measurement,
        state: str,
        load: Callable[[], Any],
        plan: PairPlan | None,
        reference: Path | None = None,
    ) -> Measurement:
        """``measured`` with the state's pair scores when there is a plan, each carrying the
        ``reference`` model's loss on the same pair (the reference-based score)."""
        if plan is None:
            return measured
        pairs = self.measurer.measure_pairs(state, load, plan).pairs or []
        if reference is not None:
            before = self.measurer.measure_pairs(
                self.model_state(reference), self.model_loader(reference), plan
            )
            losses = {p.key: p.loss for p in before.pairs or []}
            pairs = [replace(p, reference=losses.get(p.key)) for p in pairs]
        return replace(measured, pairs=pairs)

    def privacy(
        self, scenario: str, group: Population, splits: Splits, seed: int | None = None
    ) -> PairPlan | None:
        """The pairs every state of ``scenario`` trained under ``seed`` is scored on for
        membership inference (default: the first training seed's)."""
        return privacy_plan(self, scenario, group, splits, seed)

    def seed_plans(self, scenario: str, group: Population, splits: Splits) -> list[PairPlan | None]:
        """Every training seed's pair plan, each once (one where the seeds share it: one seed,
        requests that take every pair, no membership inference)."""
        plans = (self.privacy(scenario, group, splits, seed) for seed in self.training_seeds)
        return list(dict.fromkeys(plans))

    def _untrained_rows(
        self,
        cell: CellId,
        group: Population,
        splits: Splits,
        measure: Callable[[PairPlan | None], Measurement | None],
        before: Measurement | None = None,
    ) -> list[ResultRow]:
        """The rows of a state no request trained (``measure(plan)``: the before model or the
        oracle): scored on every training seed's pairs, its membership rows pooled over the
        seeds' plans as a request's over its seeds, each plan against the oracle on the same
        pairs; its other rows are one evaluation's."""
        plans = self.seed_plans(cell.scenario, group, splits)
        # Every plan of the state first, then the oracle's: each model is loaded once.
        runs = _present([measure(plan) for plan in plans])
        assert runs is not None
        oracles = _present([self.measure_oracle(group, plan) for plan in plans])
        return metric_rows(cell, runs, splits, before, oracles, one_state=True)

    def before(self, scenario: str, group: Population, splits: Splits, requests: int = 1) -> None:
        """The scenario's before row: the model before any request, on its splits."""
        cell = CellId.before(scenario, requests=requests)

        def compute() -> list[ResultRow]:
            rows = self._untrained_rows(
                cell, group, splits, lambda plan: self.measure_model(group, plan)
            )
            return rows + generalisation.before_rows(self, cell, group, splits)

        self.stage(f"{scenario}/before", compute)

    def oracle(self, scenario: str, group: Population, splits: Splits, requests: int = 1) -> None:
        """The scenario's oracle row, when the group has an oracle: its change against before
        on the same people, and its own rows versus the oracle (a check: forget quality 1,
        distance 0)."""
        if group.oracle is None:
            return
        cell = CellId.oracle(scenario, requests=requests)

        def compute() -> list[ResultRow]:
            rows = self._untrained_rows(
                cell,
                group,
                splits,
                lambda plan: self.measure_oracle(group, plan),
                self.measure_model(group),
            )
            return rows + generalisation.oracle_rows(self, cell, group, splits)

        self.stage(f"{scenario}/oracle", compute)

    def after(
        self,
        cell: CellId,
        outcome: RequestOutcome,
        group: Population,
        splits: Splits,
        along: trajectory.Along | None = None,
        offset: int = 0,
    ) -> list[ResultRow]:
        """The rows of a request's cell: its measurements (and, evaluated ``along`` the way,
        its points', their steps counted from ``offset``: a sequential chain's), or its status
        when it did not finish."""
        if not outcome.ok:
            return [cell.status(outcome.status, outcome.detail or outcome.status)]
        started = time.perf_counter()
        plan = self.privacy(cell.scenario, group, splits, outcome.seed)
        measured = self.measure_request(outcome, group, plan)
        self._timing(outcome, time.perf_counter() - started)
        # Against the before state of the same people (its evaluation is cached): the rows'
        # changes get paired intervals.
        rows = metric_rows(
            cell, [measured], splits, self.measure_model(group), self.measure_oracle(group, plan)
        )
        rows += generalisation.request_rows(self, cell, [outcome], group, splits)
        if along is not None:
            rows += trajectory.point_rows(self, cell, outcome, group, splits, along.general, offset)
        return rows

    def pooled(
        self, cell: CellId, outcomes: list[RequestOutcome], group: Population, splits: Splits
    ) -> list[ResultRow]:
        """The cell's rows pooled over the training seeds that finished, each seed's state
        scored on its own pairs and set against the oracle on the same pairs."""
        plans = [self.privacy(cell.scenario, group, splits, o.seed) for o in outcomes]
        runs = [self.measure_request(o, group, p) for o, p in zip(outcomes, plans, strict=True)]
        oracles = _present([self.measure_oracle(group, plan) for plan in plans])
        rows = metric_rows(cell, runs, splits, self.measure_model(group), oracles)
        return rows + generalisation.request_rows(self, cell, outcomes, group, splits)

    def request_stage(
        self,
        stage: str,
        cell: CellId,
        group: Population,
        splits: Splits,
        entry: MethodEntry,
        forget: Sequence[str],
        retain: Sequence[str],
        scope: ScopeConfig | None = None,
    ) -> tuple[list[ResultRow], Outcomes]:
        """One request on ``group.model`` per training seed and its measurements (the cell's
        rows) and the requests that finished."""

        settings = entry.train(self.config.train_of(cell.scenario))
        path = trajectory.along(self, cell.scenario, group, splits, settings)

        def train(seed: int) -> RequestOutcome:
            return self.request(
                group.model,
                forget,
                retain,
                entry,
                cell.scenario,
                scope=scope,
                seed=seed,
                along=path,
            )

        rows, outcomes = self.cell_stage(
            stage,
            cell,
            train,
            lambda outcome: self.after(cell, outcome, group, splits, path),
            lambda outcomes: self.pooled(cell, outcomes, group, splits),
        )
        self.states[cell] = (group, splits, outcomes)
        return rows, outcomes

    def methods(
        self, scenario: str, group: Population, splits: Splits, forget: list[str], retain: list[str]
    ) -> None:
        """One request per method of a one-request scenario, then every pair of the methods
        that finished compared on the same people and questions (``contrast`` rows)."""
        finished: dict[CellId, Outcomes] = {}
        for entry in self.config.methods_of(scenario):
            cell = CellId(scenario, entry.name)
            _, finished[cell] = self.request_stage(
                f"{scenario}/{entry.name}", cell, group, splits, entry, forget, retain
            )
        self.contrasts(f"{scenario}/contrasts", group, splits, finished)
        self.matched(scenario, group, splits, finished)

    def matched(
        self, scenario: str, group: Population, splits: Splits, cells: dict[CellId, Outcomes]
    ) -> None:
        """Each cell evaluated along its request, at matched forgetting
        (:mod:`pulse.protocol.trajectory`), in one stage: every training seed's path that
        finished, pooled."""
        entries = {e.name: e for e in self.config.methods_of(scenario)}

        def train(cell: CellId) -> Any:
            return entries[cell.method].train(self.config.train_of(scenario))

        evaluated = {
            cell: finished
            for cell, outcomes in cells.items()
            if cell.method in entries
            and train(cell).eval_every
            and (finished := [outcomes[s] for s in self.training_seeds if outcomes[s].ok])
        }
        if not evaluated:
            return

        def compute() -> list[ResultRow]:
            return trajectory.matched_rows(
                self, scenario, group, splits, evaluated, lambda c: train(c).eval_general
            )

        self.stage(f"{scenario}/matched", compute)

    def contrasts(
        self, stage: str, group: Population, splits: Splits, cells: dict[CellId, Outcomes]
    ) -> None:
        """Each cell against each later one (methods, or one method's scopes), paired on the
        same people and questions and seed by seed (the seeds where both finished), in one
        stage; the reading ranks them by these paired intervals rather than by two
        overlapping ones."""
        seeds = self.training_seeds
        pairs = [
            (a, b, common)
            for i, a in enumerate(cells)
            for b in list(cells)[i + 1 :]
            if (common := [s for s in seeds if cells[a][s].ok and cells[b][s].ok])
        ]
        if not pairs:
            return

        def compute() -> list[ResultRow]:
            # Each state is read once, however many pairs it takes part in.
            measured: dict[tuple[CellId, int], Measurement] = {}

            def state(cell: CellId, seed: int) -> Measurement:
                if (cell, seed) not in measured:
                    measured[cell, seed] = self.measure_request(cells[cell][seed], group)
                return measured[cell, seed]

            rows = []
            for a, b, common in pairs:
                runs = [state(a, s) for s in common]
                other = [state(b, s) for s in common]
                versus = b.setting if a.method == b.method else b.method
                rows += contrast_rows(a, runs, other, versus, splits)
            return rows

        self.stage(stage, compute)

    def _timing(self, outcome: RequestOutcome, eval_seconds: float) -> None:
        """Where the current stage's time went (the sequential-cost benchmark reads this)."""
        if self._current is None or outcome.out_dir is None:
            return
        self.store.note(
            self._current,
            request=outcome.out_dir.name,
            reused_request=outcome.reused,
            train_seconds=0.0 if outcome.reused else outcome.seconds,
            eval_seconds=round(eval_seconds, 3),
        )


def _present(measured: Sequence[Measurement | None]) -> list[Measurement] | None:
    """``measured`` when every one is there (the group has an oracle), else None."""
    found = [m for m in measured if m is not None]
    return found if len(found) == len(measured) else None


def _once(load: Callable[[], Any]) -> Callable[[], Any]:
    """``load`` called at most once: the MCQ evaluation and the pair scores of one state share
    the model when neither is cached."""
    held: list[Any] = []

    def get() -> Any:
        if not held:
            held.append(load())
        return held[0]

    return get


def _finished(
    rows: Sequence[ResultRow], train: Callable[[int], RequestOutcome], seed: int
) -> RequestOutcome:
    """The request of a stage whose rows are all ``ok`` (read back from the request cache),
    else a failed outcome: a failed request is not trained again."""
    if rows and all(row.status == "ok" for row in rows):
        return train(seed)
    return RequestOutcome("failed", None, "did not finish")


def _outcome(result: RequestResult, seed: int, reused: bool = False) -> RequestOutcome:
    if result.ok:
        return RequestOutcome(
            "ok", result.out_dir, reused=reused, seconds=result.total_seconds, seed=seed
        )
    diverged = result.diverged or {}
    detail = (
        f"diverged at step {diverged.get('step')}: loss {diverged.get('value')} "
        f"({diverged.get('reason', 'out of bounds')})"
    )
    return RequestOutcome("diverged", None, detail)
