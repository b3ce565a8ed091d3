"""Measure model states and turn their per-item records into result rows.

One evaluation per (model state, people) serves every split and scenario that shares them: the
before row of the finetuned, sequential and scope scenarios is one evaluation, and the sequential
splits (current, forgotten, pending) are read from the same per-item records. Every evaluation,
MCQ or PEBench, goes through one cache (:meth:`Measurer.cached`) in the run directory. The rows
come from the registered metrics (:mod:`pulse.protocol.metrics`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import nn

from pulse.data.mllmu import profile_items, read_mllmu
from pulse.data.mmbench import CIRCULAR_STEP, MMBenchRow, read_mmbench
from pulse.data.schema import ItemKind, QAItem
from pulse.errors import DataError
from pulse.eval.encodings import EncodingCache
from pulse.eval.mcq import MCQConfig, score_mcq
from pulse.eval.mmbench import evaluate_mmbench
from pulse.eval.options import clean_options
from pulse.models import collective
from pulse.protocol.cells import CellId
from pulse.protocol.config import EvalConfig
from pulse.protocol.measurement import Measurement
from pulse.protocol.metrics import CONTRAST, GAP, Comparison, Group, Metric, metrics
from pulse.protocol.privacy import PairPlan
from pulse.protocol.results import ResultRow
from pulse.protocol.store import RunStore, content_key

# The before states of two scenarios, the oracle, and the gap's two request states.
RECENT_MEASUREMENTS = 5


def _plan(
    chosen: Sequence[Metric], splits: Mapping[str, Sequence[str]]
) -> list[tuple[Group, Metric]]:
    """(group, metric) pairs in row order: group by group, the metrics in registry order."""
    by_group: dict[tuple[str, str], tuple[Group, list[Metric]]] = {}
    for metric in chosen:
        for group in metric.groups(splits):
            by_group.setdefault((group.split, group.modality), (group, []))[1].append(metric)
    return [(group, metric) for group, members in by_group.values() for metric in members]


def metric_rows(
    cell: CellId,
    runs: Sequence[Measurement],
    splits: Mapping[str, Sequence[str]],
    before: Measurement | None = None,
    oracle: Measurement | Sequence[Measurement] | None = None,
    *,
    one_state: bool = False,
) -> list[ResultRow]:
    """The rows of ``runs`` — one measurement per training seed of the same request, on the
    same people and questions — pooled: each value the mean over the seeds, its interval and
    its change's interval drawn over seeds and units. One run gives that run's rows; given the
    ``before`` measurement of the same people, every change gets its paired interval; given the
    ``oracle``'s, the metrics versus the oracle get rows too. ``oracle`` is one measurement for
    every run, or one per run: the oracle's membership scores on each training seed's pairs
    (:mod:`pulse.protocol.privacy`). With ``one_state`` the runs are one model state scored on
    each seed's pairs (the before and oracle rows under ``repeats``): only the metrics that
    read the pairs pool them, the others read the first."""
    oracles = None if oracle is None else _per_run(oracle, runs)
    chosen = [
        m
        for m in metrics()
        if all(m.applies(run) for run in runs)
        and (not m.versus_oracle or (oracles is not None and all(m.applies(o) for o in oracles)))
    ]
    rows = []
    for group, metric in _plan(chosen, splits):
        states = runs if not one_state or metric.reads == "pairs" else runs[:1]
        samples = [metric.select(run, group) for run in states]
        if not all(samples):
            continue
        if metric.versus_oracle:
            assert oracles is not None
            references = [metric.select(o, group) for o in oracles[: len(states)]]
            if not all(references):
                continue
            samples = [metric.against(s, r) for s, r in zip(samples, references, strict=True)]
            if not all(samples):  # the metric has no value against this oracle
                continue
        change = None
        if before is not None and not metric.versus_oracle and metric.applies(before):
            earlier = metric.select(before, group)
            change = metric.change(samples, earlier) if earlier else None
        rows.append(
            cell.row(
                group.split,
                group.modality,
                metric.name,
                metric.value(samples),
                metric.count(samples),
                metric.interval(samples),
                change,
                metric.seeds(samples),
            )
        )
    return rows


def _per_run(
    oracle: Measurement | Sequence[Measurement], runs: Sequence[Measurement]
) -> list[Measurement]:
    """The oracle's measurement paired with each run."""
    if isinstance(oracle, Measurement):
        return [oracle] * len(runs)
    if len(oracle) != len(runs):
        raise ValueError(f"{len(oracle)} oracle measurements for {len(runs)} runs")
    return list(oracle)


def difference_rows(
    cell: CellId,
    later: Sequence[Measurement],
    earlier: Sequence[Measurement],
    splits: Mapping[str, Sequence[str]],
    comparison: Comparison,
    versus: str | None = None,
) -> list[ResultRow]:
    """Rows of ``comparison``: the ``later`` states' value minus the ``earlier`` states' on the
    same people and questions, for every compared metric, each with the paired 95 % interval of
    the difference. ``later[i]`` pairs with ``earlier[i]`` (the same training seed)."""
    states = [*later, *earlier]
    chosen = [m for m in metrics() if m.compared and all(m.applies(s) for s in states)]
    rows = []
    for group, metric in _plan(chosen, splits):
        after = [metric.select(m, group) for m in later]
        before = [metric.select(m, group) for m in earlier]
        if all(after) and all(before):
            value = metric.difference(after, before)
            interval = metric.paired(after, before)
            row = cell.row(
                group.split,
                group.modality,
                comparison.name,
                value,
                metric.count(after),
                interval,
                None,
                len(later),
            )
            rows.append(replace(row, versus=versus))
    return rows


def gap_rows(cell, later, earlier, splits) -> list[ResultRow]:
    """The sequential scenario's last request against its one-batch request."""
    return difference_rows(cell, later, earlier, splits, GAP)


def contrast_rows(cell, runs, other, versus: str, splits) -> list[ResultRow]:
    """``cell``'s method against the method (or scope) ``versus``."""
    return difference_rows(cell, runs, other, splits, CONTRAST, versus)


class Measurer:
    """Reads the questions once; evaluates model states with caching in the run directory."""

    def __init__(
        self,
        store: RunStore,
        cfg: EvalConfig,
        mllmu: Path | None,
        mmbench: Path | None,
        seed: int,
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.mllmu = mllmu
        self.seed = seed
        self._items: dict[str, dict[str, list[QAItem]]] = {}
        # The last few measurements in memory: every request's rows read the before state
        # again and the sequential gap two request states (each file holds every per-item
        # record); bounded, so a long run does not keep every state it measured.
        self._recent: OrderedDict[str, Measurement] = OrderedDict()
        # Every model state is scored on the same questions: encode them once per run.
        self.encodings = EncodingCache()
        self.general_rows: list[MMBenchRow] = []
        if cfg.general and mmbench is not None:
            rows = read_mmbench(mmbench)
            if cfg.general_questions is not None:
                questions = sorted({r.index % CIRCULAR_STEP for r in rows})
                keep = set(questions[: cfg.general_questions])
                rows = [r for r in rows if r.index % CIRCULAR_STEP in keep]
            self.general_rows = rows

    def people(self, config: str) -> dict[str, list[QAItem]]:
        """The MCQ items of every profile of an MLLMU-Bench config, by person."""
        if config not in self._items:
            if self.mllmu is None:
                raise DataError("data.mllmu", "no MLLMU-Bench root configured")
            by_person: dict[str, list[QAItem]] = {}
            for profile in read_mllmu(self.mllmu, config):
                items = [i for i in profile_items(profile) if i.kind is ItemKind.MCQ]
                by_person[profile.id] = items
            self._items[config] = by_person
        return self._items[config]

    def items(self, config: str, people: Sequence[str]) -> list[QAItem]:
        known = self.people(config)
        missing = [p for p in people if p not in known]
        if missing:
            raise DataError(self.mllmu / config, f"no profile with ID {missing[0]!r}")
        return [item for p in people for item in known[p]]

    def cached(
        self, key: str, evaluate: Callable[[], Measurement], describe: Mapping[str, Any]
    ) -> Measurement:
        """The measurement stored under ``key`` in the run directory, or ``evaluate()``'s,
        then stored with ``describe`` (what was measured) beside its records."""
        if key in self._recent:
            self._recent.move_to_end(key)
            return self._recent[key]
        cached = self.store.read_json("evals", f"{key}.json", parse=Measurement.from_dict)
        if cached is not None:
            return self._remember(key, cached)
        measurement = self._remember(key, evaluate())
        self.store.write_json({**describe, **measurement.to_dict()}, "evals", f"{key}.json")
        return measurement

    def measure(
        self,
        state: str,
        model_loader: Any,
        config: str,
        people: Sequence[str],
        *,
        general: bool = True,
    ) -> Measurement:
        """MCQ records (and, unless ``general`` is off, general capability) of the model state
        ``state`` (a stable name) on ``people``; ``model_loader`` returns (model, processor)
        and is called only when the result is not cached."""
        people = sorted(people)
        parts: list[Any] = [state, config, people, self.cfg.model_dump(mode="json"), self.seed]
        if not general and self.general_rows:
            parts.append("without general capability")
        key = content_key(*parts)

        def evaluate() -> Measurement:
            model, processor = model_loader()
            return self.evaluate(model, processor, self.items(config, people), general=general)

        return self.cached(key, evaluate, {"state": state, "config": config, "people": people})

    def measure_pairs(self, state: str, model_loader: Any, plan: PairPlan) -> Measurement:
        """Membership-inference scores of the model state ``state`` on ``plan``'s pairs
        (cached like any evaluation; ``model_loader`` is called only when not cached)."""
        from pulse.eval.membership import encode_pairs, score_pairs
        from pulse.protocol.privacy import pairs_to_score

        key = content_key("pairs", state, plan.identity(), self.cfg.batch_size)

        def evaluate() -> Measurement:
            assert self.mllmu is not None
            model, processor = model_loader()
            # The same pairs and processor give the same batches in every state: read and
            # encoded once per run, within the encodings' byte budget.
            mllmu, size = self.mllmu, self.cfg.batch_size
            pairs = self.encodings.get(("pairs", repr(plan)), lambda: pairs_to_score(mllmu, plan))

            # In a launched run of several processes each scores a block of the pairs.
            def score(part: list[Any]) -> list[Any]:
                key = ("pairs", repr(plan), size, collective.rank(), len(part))
                encoded = self.encodings.of(
                    processor, key, lambda: encode_pairs(processor, part, size)
                )
                return score_pairs(
                    model, processor, part, k=plan.min_k, batch_size=size, encoded=encoded
                )

            return Measurement(pairs=collective.sharded(pairs, score))

        return self.cached(key, evaluate, {"state": state, "pairs_of": plan.identity()})

    def _remember(self, key: str, measurement: Measurement) -> Measurement:
        self._recent[key] = measurement
        if len(self._recent) > RECENT_MEASUREMENTS:
            self._recent.popitem(last=False)
        return measurement

    def evaluate(
        self, model: nn.Module, processor: Any, items: Sequence[QAItem], general: bool = True
    ) -> Measurement:
        """``items``' records and, with ``general`` (and a general set), the general set's,
        scored with the run's scorer and batch size."""
        cfg = MCQConfig(
            batch_size=self.cfg.batch_size,
            scorer=self.cfg.scorer,
            max_new_tokens=self.cfg.max_new_tokens,
            seed=self.seed,
        )
        # In a launched run of several processes, each scores a block of the items.
        records = (
            score_mcq(model, processor, list(items), cfg, cache=self.encodings, shard=True)
            if items
            else []
        )
        mmbench = None
        if general and self.general_rows:
            # Kept with its per-question verdicts: a change's paired interval needs them.
            mmbench = evaluate_mmbench(
                model, processor, self.general_rows, cfg, cache=self.encodings, shard=True
            )
        chance = {i.id: 1 / len(clean_options(i.options)) for i in items if i.options}
        return Measurement(records, mmbench, chance)
