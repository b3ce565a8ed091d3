"""`pulse run`: every enabled scenario, every method, resumable stage by stage.

A stage is one cell of the results (a scenario's before row, one method's request, one request
of a sequence). Finished stages are read back on a re-run; a request that blows up (diverged or
raised) becomes a status row and the run goes on. Requests are cached by everything that
determines them, so the sequential scenario's one-batch comparison and the scope ablation's LLM
row reuse the finetuned scenario's request when their settings match.

With ``repeats`` above 1 a cell trains its request under every training seed: a stage per seed
(``<cell's stage>/repeat-<r>``, rows tagged with the repeat) and the cell's own stage, which
pools the seeds that finished (:func:`pulse.protocol.measure.pooled_rows`). A sequence of
requests runs one chain per seed.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pulse.data.splits import read_split, write_split
from pulse.errors import ConfigError, PulseError
from pulse.protocol.config import MethodEntry, RunConfig, ScopeConfig, parse_scope_label
from pulse.protocol.measure import (
    CellId,
    Measurement,
    Measurer,
    contrast_rows,
    gap_rows,
    pooled_rows,
)
from pulse.protocol.results import ResultRow
from pulse.protocol.sources import Sources, check_sources, local_sources, world_sources
from pulse.protocol.splits import forget_retain, partition, sequential_splits
from pulse.protocol.store import RunStore, content_key


@dataclass(frozen=True)
class RequestOutcome:
    status: str  # ok / diverged / failed
    out_dir: Path | None
    detail: str | None = None
    reused: bool = False  # read back from the request cache, not trained now
    seconds: float | None = None  # the request's own time (load, train, save)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


Splits = dict[str, list[str]]
Outcomes = dict[int, RequestOutcome]  # training seed -> the request it trained


@dataclass(frozen=True)
class Population:
    """The people a cell evaluates: their questions' MLLMU-Bench config, and the model the
    requests start from."""

    model: Path
    config: str
    people: list[str]


class Interrupt(Exception):
    """Raised by a test hook to simulate a crash between stages."""


class Runner:
    def __init__(
        self,
        config: RunConfig,
        store: RunStore,
        sources: Sources,
        *,
        progress: bool = True,
        stop_after: int | None = None,
    ) -> None:
        self.config = config
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
        self._stop_after = stop_after  # test hook: raise Interrupt after this many new stages
        self._new_stages = 0
        self._current: str | None = None
        if not progress:
            # Every request and evaluation loads a model; its per-load bar would flood the log.
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()

    # --- stages -----------------------------------------------------------------------------

    def stage(self, name: str, compute: Callable[[], Sequence[ResultRow]]) -> list[ResultRow]:
        if self.store.is_done(name):
            return self.store.stage_rows(name)
        self._say(f"[{name}]")
        self._current = name
        try:
            rows = self.store.run_stage(name, compute)
        finally:
            self._current = None
        self._new_stages += 1
        if self._stop_after is not None and self._new_stages >= self._stop_after:
            raise Interrupt(f"stopped after {self._new_stages} stages")
        return rows

    def _say(self, text: str) -> None:
        if self.progress:
            print(text, flush=True)

    # --- models -----------------------------------------------------------------------------

    def model_loader(self, model_dir: Path, request_dir: Path | None = None) -> Callable[[], Any]:
        def load() -> Any:
            import torch

            device = "cuda" if torch.cuda.is_available() else None
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
        pairs: Callable[[], tuple[list, list]] | None = None,
        seed: int | None = None,
    ) -> RequestOutcome:
        """Run (or reuse) one unlearning request, trained under ``seed`` (default: the run's);
        never raises for a failing method."""
        from pulse.methods.request import RESULT_FILE, run_request, train_pairs

        seed = self.config.seed if seed is None else seed
        train = entry.train(self.config.train_of(scenario))
        scope = scope or train.scope
        key = content_key(
            str(Path(model_dir).resolve()),
            str(adapter.resolve()) if adapter else None,
            sorted(forget),
            sorted(retain),
            entry.method,
            entry.params,
            train.model_dump(mode="json", exclude={"scope"}),
            scope.model_dump(mode="json"),
            reference,
            seed,
        )
        out = self.store.path("requests", key)
        done = out / RESULT_FILE
        if done.is_file():
            record = json.loads(done.read_text(encoding="utf-8"))
            return _outcome(record, out, reused=True)
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
                forget_ids=forget,
                retain_ids=retain,
                adapter=adapter,
                scope=scope.update_scope(),
                epochs=train.epochs,
                max_steps=train.max_steps,
                lr=train.lr,
                batch_size=train.batch_size,
                grad_accum=train.grad_accum,
                seed=seed,
                reference=reference,  # type: ignore[arg-type]
                pairs_per_id=train.pairs_per_id,
                dtype=self.config.models.dtype,
                bf16=train.bf16,
                gradient_checkpointing=train.gradient_checkpointing,
                loss_bound=train.loss_bound,
                group_by_length=train.group_by_length,
                pack_tokens=train.pack_tokens,
                progress=self.progress,
            )
        except (KeyboardInterrupt, Interrupt):
            raise
        except Exception as exc:  # one failing method must not stop the run
            (out / "error.txt").parent.mkdir(parents=True, exist_ok=True)
            (out / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
            reason = str(exc).splitlines()[0] if str(exc) else ""
            return RequestOutcome("failed", None, f"{type(exc).__name__}: {reason}".rstrip(": "))
        return _outcome(result.record, out)

    # --- scenarios --------------------------------------------------------------------------

    def run(self) -> None:
        started = time.perf_counter()
        scenarios = {
            "finetuned": self.finetuned,
            "pretrained": self.pretrained,
            "sequential": self.sequential,
            "scope": self.scope,
            "pebench": self.pebench,
        }
        for name in self.config.enabled():
            scenarios[name]()
        self.store.rebuild_results()
        self.store.finish(time.perf_counter() - started)

    def finetuned_split(self) -> tuple[list[str], list[str]]:
        spec = self.config.scenarios.finetuned
        saved = self._saved_split("finetuned")
        if saved is not None:
            return saved
        if spec.forget is not None:
            from pulse.methods.request import resolve_ids

            people = set(self.measurer.people(self.config.data.fictitious))
            forget, _ = resolve_ids(spec.forget, self.sources.mllmu)
            retain, _ = resolve_ids(spec.retain, self.sources.mllmu)
            for key, ids in (("forget", forget), ("retain", retain)):
                unknown = [i for i in ids if i not in people]
                if unknown:  # checked before the split is saved as this run's
                    raise ConfigError(
                        f"scenarios.finetuned.{key}: {unknown[0]!r} is not a split file, an "
                        f"MLLMU-Bench config or a person of {self.config.data.fictitious}"
                    )
        else:
            people = list(self.measurer.people(self.config.data.fictitious))
            forget, retain = forget_retain(
                people, spec.forget_fraction, self.config.seed, spec.people
            )
        return self._save_split("finetuned", forget, retain)

    def _saved_split(self, name: str) -> tuple[list[str], list[str]] | None:
        folder = self.store.path("splits", name)
        if (folder / "forget.txt").is_file() and (folder / "retain.txt").is_file():
            return read_split(folder / "forget.txt"), read_split(folder / "retain.txt")
        return None

    def _save_split(
        self, name: str, forget: list[str], retain: list[str]
    ) -> tuple[list[str], list[str]]:
        folder = self.store.path("splits", name)
        write_split(folder / "retain.txt", retain)
        write_split(folder / "forget.txt", forget)  # written last: its presence means complete
        return forget, retain

    def _before(self, scenario: str, group: Population, splits: Splits, requests: int = 1) -> None:
        cell = CellId(scenario, scenario, "before", "", 0, requests)
        stage = f"{scenario}/before"
        self.stage(stage, lambda: self._measure_before(group).split_rows(cell, splits))

    def _measure_before(self, group: Population) -> Measurement:
        """The model before any request, on the group's people (evaluated once, then cached)."""
        state = f"model:{group.model.resolve()}"
        return self.measurer.measure(
            state, self.model_loader(group.model), group.config, group.people
        )

    def _after(
        self, cell: CellId, outcome: RequestOutcome, group: Population, splits: Splits
    ) -> list[ResultRow]:
        """The rows of a request's cell: its measurements, or its status when it did not finish."""
        if not outcome.ok:
            return [cell.status(outcome.status, outcome.detail or outcome.status)]
        started = time.perf_counter()
        measured = self._measure_request(outcome, group)
        self._timing(outcome, time.perf_counter() - started)
        # Against the before state of the same people (its evaluation is cached): the rows'
        # changes get paired intervals.
        return measured.split_rows(cell, splits, self._measure_before(group))

    def _measure_request(self, outcome: RequestOutcome, group: Population) -> Measurement:
        """The model a finished request left, on the group's people (cached like any state)."""
        assert outcome.out_dir is not None
        return self.measurer.measure(
            f"request:{outcome.out_dir.name}",
            self.model_loader(group.model, outcome.out_dir),
            group.config,
            group.people,
        )

    def _request_stage(
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

        def train(seed: int) -> RequestOutcome:
            return self.request(
                group.model, forget, retain, entry, cell.scenario, scope=scope, seed=seed
            )

        return self.cell_stage(
            stage,
            cell,
            train,
            lambda outcome: self._after(cell, outcome, group, splits),
            lambda outcomes: self._pooled(cell, outcomes, group, splits),
        )

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
        seeds = self.config.training_seeds()
        if len(seeds) == 1:
            rows = self.stage(stage, lambda: rows_of(train(seeds[0])))
            return rows, {seeds[0]: self._finished(rows, train, seeds[0])}
        per_seed = self._seed_stages(stage, seeds, lambda seed: rows_of(train(seed)))
        outcomes = {seed: self._finished(per_seed[seed], train, seed) for seed in seeds}

        def pooled() -> list[ResultRow]:
            finished = [o for o in outcomes.values() if o.ok]
            if finished:
                return pool(finished)
            return [cell.status("failed", f"no training seed of {len(seeds)} finished")]

        return self.stage(stage, pooled), outcomes

    def _seed_stages(
        self, stage: str, seeds: Sequence[int], rows_for: Callable[[int], list[ResultRow]]
    ) -> dict[int, list[ResultRow]]:
        """A stage per training seed of ``seeds`` (``<stage>/repeat-<r>``, ``r`` the seed's
        place among the run's seeds), its rows marked with that repeat."""
        repeats = {seed: r for r, seed in enumerate(self.config.training_seeds())}
        return {
            seed: self.stage(
                f"{stage}/repeat-{repeats[seed]}",
                lambda seed=seed: [replace(x, repeat=repeats[seed]) for x in rows_for(seed)],
            )
            for seed in seeds
        }

    @staticmethod
    def _finished(
        rows: Sequence[ResultRow], train: Callable[[int], RequestOutcome], seed: int
    ) -> RequestOutcome:
        """The request of a stage whose rows are all ``ok`` (read back from the request
        cache), else a failed outcome: a failed request is not trained again."""
        if rows and all(row.status == "ok" for row in rows):
            return train(seed)
        return RequestOutcome("failed", None, "did not finish")

    def _pooled(
        self, cell: CellId, outcomes: list[RequestOutcome], group: Population, splits: Splits
    ) -> list[ResultRow]:
        """The cell's rows pooled over the training seeds that finished."""
        runs = [self._measure_request(o, group) for o in outcomes]
        return pooled_rows(cell, runs, splits, self._measure_before(group))

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

    def _fictitious(self) -> tuple[Population, list[str], list[str]]:
        """The fine-tuned model, its people and the finetuned split (shared by three scenarios)."""
        assert self.sources.finetuned is not None
        forget, retain = self.finetuned_split()
        group = Population(self.sources.finetuned, self.config.data.fictitious, forget + retain)
        return group, forget, retain

    def finetuned(self) -> None:
        group, forget, retain = self._fictitious()
        splits = {"forget": forget, "retain": retain}
        self._before("finetuned", group, splits)
        self._methods("finetuned", group, splits, forget, retain)

    def _methods(
        self, scenario: str, group: Population, splits: Splits, forget: list[str], retain: list[str]
    ) -> None:
        """One request per method of a one-request scenario, then every pair of the methods
        that finished compared on the same people and questions (``contrast`` rows)."""
        finished: dict[CellId, Outcomes] = {}
        for entry in self.config.methods_of(scenario):
            cell = CellId(scenario, scenario, entry.name, "", 1, 1)
            stage = f"{scenario}/{entry.name}"
            _, finished[cell] = self._request_stage(
                stage, cell, group, splits, entry, forget, retain
            )
        self._contrasts(f"{scenario}/contrasts", group, splits, finished)

    def _contrasts(
        self, stage: str, group: Population, splits: Splits, cells: dict[CellId, Outcomes]
    ) -> None:
        """Each cell against each later one (methods, or one method's scopes), paired on the
        same people and questions and seed by seed (the seeds where both finished), in one
        stage; the reading ranks them by these paired intervals rather than by two
        overlapping ones."""
        seeds = self.config.training_seeds()
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
                    measured[cell, seed] = self._measure_request(cells[cell][seed], group)
                return measured[cell, seed]

            rows = []
            for a, b, common in pairs:
                runs = [state(a, s) for s in common]
                other = [state(b, s) for s in common]
                versus = b.setting if a.method == b.method else b.method
                rows += contrast_rows(a, runs, other, versus, splits)
            return rows

        self.stage(stage, compute)

    def pretrained(self) -> None:
        assert self.sources.base is not None
        config = self.config.data.celebrities
        everyone = sorted(self.measurer.people(config))
        forget, retain = self._probed_split(self.sources.base, config, everyone)
        splits = {"forget": forget, "retain": retain}
        # The before row reads the probe's own evaluation (every celebrity).
        self._before("pretrained", Population(self.sources.base, config, everyone), splits)
        group = Population(self.sources.base, config, forget + retain)
        self._methods("pretrained", group, splits, forget, retain)

    def _probed_split(
        self, model: Path, config: str, everyone: list[str]
    ) -> tuple[list[str], list[str]]:
        """Probe the base model on every candidate, keep the known ones, split them."""
        from pulse.eval.probing import probe_known_entities

        saved = self._saved_split("pretrained")
        if saved is not None:
            return saved
        spec = self.config.scenarios.pretrained
        probed = self.measurer.measure(
            f"model:{model.resolve()}", self.model_loader(model), config, everyone
        )
        selection = probe_known_entities(
            probed.mcq,
            n_unlearn=spec.forget,
            n_retain=0,
            seed=self.config.seed,
            top_k=spec.top,
            threshold=spec.threshold,
            combine=spec.combine,
        )
        if len(selection.known) <= spec.forget:
            raise PulseError(
                f"pretrained: only {len(selection.known)} people pass the probe, need more than "
                f"forget ({spec.forget})"
            )
        forget = selection.unlearn
        retain = sorted(set(selection.known) - set(forget))
        self.store.write_json(
            selection.to_dict() | {"retain": retain}, "splits", "pretrained", "probe.json"
        )
        return self._save_split("pretrained", forget, retain)

    def sequential(self) -> None:
        spec = self.config.scenarios.sequential
        group, forget, retain = self._fictitious()
        subsets = self._subsets(forget, spec.requests)
        k = len(subsets)
        before = {**sequential_splits(subsets, 0), "retain": retain}
        self._before("sequential", group, before, requests=k)
        ends: dict[CellId, Outcomes] = {}
        for entry in self.config.methods_of("sequential"):
            last = self._sequence(entry, group, subsets, retain, spec.reference_policy)
            ends[CellId("sequential", "sequential", entry.name, "sequential", k, k)] = last
            if spec.batch:
                cell = CellId("sequential", "sequential", entry.name, "batch", 1, 1)
                splits = {"forget": forget, "forgotten": forget, "retain": retain}
                stage = f"sequential/batch/{entry.name}"
                _, batch = self._request_stage(stage, cell, group, splits, entry, forget, retain)
                self._gap(entry, group, k, last, batch, {"forget": forget, "retain": retain})
        # Where the methods end after the last request, compared with each other.
        self._contrasts("sequential/contrasts", group, {"forget": forget, "retain": retain}, ends)

    def _gap(
        self,
        entry: MethodEntry,
        group: Population,
        k: int,
        last: Outcomes,
        batch: Outcomes,
        splits: Splits,
    ) -> None:
        """The sequential-vs-batch gap of one method: request K's state against the one-batch
        state, paired on the same people and questions (both evaluations are cached) and, with
        several training seeds, seed by seed: a gap stage per seed and one pooling them.
        Seeds where either side did not finish have no gap."""
        cell = CellId("sequential", "sequential", entry.name, "sequential", k, k)
        seeds = [s for s in self.config.training_seeds() if last[s].ok and batch[s].ok]
        if not seeds:
            return

        def compute(chosen: list[int]) -> list[ResultRow]:
            later = [self._measure_request(last[s], group) for s in chosen]
            earlier = [self._measure_request(batch[s], group) for s in chosen]
            return gap_rows(cell, later, earlier, splits)

        stage = f"sequential/gap/{entry.name}"
        if self.config.repeats > 1:
            self._seed_stages(stage, seeds, lambda seed: compute([seed]))
        self.stage(stage, lambda: compute(seeds))

    def _sequence(
        self,
        entry: MethodEntry,
        group: Population,
        subsets: list[list[str]],
        retain: list[str],
        reference: str,
    ) -> Outcomes:
        """Requests 1..K of one method, each on the adapter the previous one left (a chain
        per training seed); returns every seed's last request (``failed`` when its chain
        stopped early)."""
        k = len(subsets)
        previous: Outcomes = {}
        for r in range(1, k + 1):
            cell = CellId("sequential", "sequential", entry.name, "sequential", r, k)
            splits = {**sequential_splits(subsets, r), "retain": retain}

            def train(seed: int, r: int = r, earlier: Outcomes = previous) -> RequestOutcome:
                before = earlier.get(seed)
                if r > 1 and (before is None or not before.ok):
                    return RequestOutcome("failed", None, f"request {r - 1} did not finish")
                # Cached by its inputs: on resume this reads the finished request back.
                return self.request(
                    group.model,
                    subsets[r - 1],
                    retain,
                    entry,
                    "sequential",
                    adapter=before.out_dir / "adapter" if before and before.out_dir else None,
                    reference=reference,
                    seed=seed,
                )

            _, previous = self.cell_stage(
                f"sequential/sequential/{entry.name}/{r}",
                cell,
                train,
                lambda outcome, cell=cell, splits=splits: self._after(cell, outcome, group, splits),
                lambda outcomes, cell=cell, splits=splits: self._pooled(
                    cell, outcomes, group, splits
                ),
            )
        return previous

    def _subsets(self, forget: list[str], k: int) -> list[list[str]]:
        folder = self.store.path("splits", "sequential")
        files = [folder / f"request_{i}.txt" for i in range(1, k + 1)]
        if all(f.is_file() for f in files):
            return [read_split(f) for f in files]
        subsets = partition(forget, k, self.config.seed)
        for f, subset in zip(files, subsets, strict=True):
            write_split(f, subset)
        return subsets

    def scope(self) -> None:
        group, forget, retain = self._fictitious()
        splits = {"forget": forget, "retain": retain}
        self._before("scope", group, splits)
        by_method: dict[str, dict[CellId, Outcomes]] = {}
        for label in self.config.scenarios.scope.scopes:
            scope = parse_scope_label(label, self.config.train_of("scope").scope)
            for entry in self.config.methods_of("scope"):
                cell = CellId("scope", "scope", entry.name, label, 1, 1)
                stage = f"scope/{label}/{entry.name}"
                _, outcomes = self._request_stage(
                    stage, cell, group, splits, entry, forget, retain, scope
                )
                by_method.setdefault(entry.name, {})[cell] = outcomes
        # The ablation compares one method's scopes with each other, not methods.
        for method, cells in by_method.items():
            self._contrasts(f"scope/contrasts/{method}", group, splits, cells)

    def pebench(self) -> None:
        from pulse.protocol.pebench import run_pebench

        run_pebench(self)


def _outcome(record: dict[str, Any], out: Path, reused: bool = False) -> RequestOutcome:
    if record.get("status") == "ok":
        return RequestOutcome("ok", out, reused=reused, seconds=record.get("total_seconds"))
    diverged = record.get("diverged") or {}
    detail = (
        f"diverged at step {diverged.get('step')}: loss {diverged.get('value')} "
        f"({diverged.get('reason', 'out of bounds')})"
    )
    return RequestOutcome("diverged", None, detail)


def run_protocol(
    config: RunConfig,
    run_dir: str | Path,
    *,
    new_dir: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> RunStore:
    """Open (or resume) the run directory, prepare the models and run every enabled scenario.
    Local checkpoints and files are checked before the run directory is created."""
    if config.models.world is None:
        sources = local_sources(config)
        check_sources(config, sources)
        store = RunStore.open(run_dir, config, new_dir=new_dir)
    else:
        store = RunStore.open(run_dir, config, new_dir=new_dir)
        sources = world_sources(config, store.root, progress=progress)
        check_sources(config, sources)
    Runner(config, store, sources, progress=progress, stop_after=stop_after).run()
    return store
