"""Measure one model state: MCQ records on a set of people and general capability, then the
result rows of any split of those people.

One evaluation per (model state, people) serves every split and scenario that shares them: the
before row of the finetuned, sequential and scope scenarios is one evaluation, and the sequential
splits (current, forgotten, pending) are read from the same per-item records.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import astuple, dataclass, field, replace
from pathlib import Path
from typing import Any

from torch import nn

from pulse.data.mllmu import profile_items, read_mllmu
from pulse.data.mmbench import CIRCULAR_STEP, MMBenchRow, read_mmbench
from pulse.data.schema import ItemKind, QAItem
from pulse.errors import DataError
from pulse.eval.encodings import EncodingCache
from pulse.eval.intervals import (
    Interval,
    paired_person_bootstrap_over_seeds,
    paired_question_bootstrap_over_seeds,
    person_bootstrap_over_seeds,
    question_bootstrap_over_seeds,
    wilson,
)
from pulse.eval.mcq import MCQConfig, score_mcq
from pulse.eval.mmbench import evaluate_mmbench
from pulse.eval.options import clean_options
from pulse.eval.records import ItemRecord, records_from_dicts, records_to_dicts, tally
from pulse.protocol.config import EvalConfig
from pulse.protocol.results import CONTRAST, GAP, ResultRow, status_row
from pulse.protocol.store import RunStore, content_key

MODALITIES = ("multimodal", "text")
# Where a general-capability evaluation keeps each metric's per-question verdicts.
VERDICTS = {"circular": "questions", "vanilla": "vanilla_questions"}
RECENT_MEASUREMENTS = 4  # before states of two scenarios, and the gap's two request states


@dataclass(frozen=True)
class CellId:
    """Where a measurement's rows belong (see :mod:`pulse.protocol.results`)."""

    scenario: str
    kind: str
    method: str
    setting: str = ""
    request: int = 0
    requests: int = 1

    # The fields are ResultRow's first six, in order.
    def row(
        self,
        split: str,
        modality: str,
        metric: str,
        value: float | None,
        n: int,
        interval: Interval | None = None,
        change: Interval | None = None,
        seeds: int = 1,
    ) -> ResultRow:
        low, high = (interval.low, interval.high) if interval else (None, None)
        change_low, change_high = (change.low, change.high) if change else (None, None)
        return ResultRow(
            *astuple(self),
            split,
            modality,
            metric,
            value,
            n,
            low=low,
            high=high,
            change_low=change_low,
            change_high=change_high,
            seeds=seeds,
        )

    def status(self, status: str, detail: str) -> ResultRow:
        """The single row of a cell that diverged or failed."""
        return status_row(*astuple(self), status, detail)


@dataclass
class Measurement:
    mcq: list[ItemRecord]
    general: dict[str, Any] | None  # circular / vanilla tallies
    chance: dict[str, float] = field(default_factory=dict)  # item -> 1 / number of options

    def split_rows(
        self,
        cell: CellId,
        splits: Mapping[str, Sequence[str]],
        before: Measurement | None = None,
    ) -> list[ResultRow]:
        """Accuracy per split and modality (and pooled), plus general capability, each with
        its 95 % interval and, given the ``before`` measurement of the same people, the paired
        interval of its change (see :mod:`pulse.eval.intervals`)."""
        return pooled_rows(cell, [self], splits, before)


def pooled_rows(
    cell: CellId,
    runs: Sequence[Measurement],
    splits: Mapping[str, Sequence[str]],
    before: Measurement | None = None,
) -> list[ResultRow]:
    """The rows of ``runs`` — one measurement per training seed of the same request, on the
    same people and questions — pooled: each value the mean over the seeds, its interval and
    its change's interval drawn over seeds and people (or questions). One run gives exactly
    that run's rows (general capability then takes the Wilson interval)."""
    seeds = len(runs)
    rows = []
    for split, people, modality in _groups(splits):
        chosen = [_select(run.mcq, people, modality) for run in runs]
        if all(chosen):
            value = _mean(tally(c).mean for c in chosen)
            interval = person_bootstrap_over_seeds(chosen)
            change = (
                paired_person_bootstrap_over_seeds(chosen, [_select(before.mcq, people, modality)])
                if before is not None
                else None
            )
            n = len(chosen[0])
            rows.append(cell.row(split, modality, "accuracy", value, n, interval, change, seeds))
            rows += _chance_row(cell, split, modality, chosen[0], runs[0].chance)
    generals = [run.general for run in runs]
    if all(g is not None for g in generals):
        for metric in ("circular", "vanilla"):
            tallies = [g[metric] for g in generals]
            value = _mean(t["mean"] for t in tallies)
            if seeds == 1:
                interval = wilson(tallies[0]["total"], tallies[0]["n"])
            elif verdicts := _verdicts(generals, VERDICTS[metric]):
                interval = question_bootstrap_over_seeds(verdicts)
            else:  # evaluations of earlier versions kept no per-question verdicts
                interval = None
            change = (
                _general_change(generals, [before.general] if before else [])
                if metric == "circular"
                else None
            )
            rows.append(
                cell.row("general", "all", metric, value, tallies[0]["n"], interval, change, seeds)
            )
    return rows


def gap_rows(
    cell: CellId,
    later: Sequence[Measurement],
    earlier: Sequence[Measurement],
    splits: Mapping[str, Sequence[str]],
) -> list[ResultRow]:
    """``gap`` rows: the sequential scenario's last request against its one-batch request
    (see :func:`difference_rows`)."""
    return difference_rows(cell, later, earlier, splits, GAP)


def contrast_rows(
    cell: CellId,
    runs: Sequence[Measurement],
    other: Sequence[Measurement],
    versus: str,
    splits: Mapping[str, Sequence[str]],
) -> list[ResultRow]:
    """``contrast`` rows: ``cell``'s method against the method ``versus`` (see
    :func:`difference_rows`); the reading ranks methods by them."""
    rows = difference_rows(cell, runs, other, splits, CONTRAST)
    return [replace(row, versus=versus) for row in rows]


def difference_rows(
    cell: CellId,
    later: Sequence[Measurement],
    earlier: Sequence[Measurement],
    splits: Mapping[str, Sequence[str]],
    metric: str,
) -> list[ResultRow]:
    """Rows of ``metric``: the ``later`` states' accuracy minus the ``earlier`` states' on the
    same people and questions (per split and modality, and general capability under
    CircularEval), each with the paired 95 % interval of the difference. ``later[i]`` pairs
    with ``earlier[i]`` (the same training seed); several seeds pool as in
    :func:`pooled_rows`."""
    seeds = len(later)
    rows = []
    for split, people, modality in _groups(splits):
        after = [_select(m.mcq, people, modality) for m in later]
        before = [_select(m.mcq, people, modality) for m in earlier]
        if all(after) and all(before):
            value = _mean(tally(a).mean - tally(b).mean for a, b in zip(after, before, strict=True))
            interval = paired_person_bootstrap_over_seeds(after, before)
            rows.append(
                cell.row(split, modality, metric, value, len(after[0]), interval, None, seeds)
            )
    late, early = [m.general for m in later], [m.general for m in earlier]
    if all(g is not None for g in (*late, *early)):
        value = _mean(
            a["circular"]["mean"] - b["circular"]["mean"] for a, b in zip(late, early, strict=True)
        )
        interval = _general_change(late, early)
        n = late[0]["circular"]["n"]
        rows.append(cell.row("general", "all", metric, value, n, interval, None, seeds))
    return rows


def _general_change(
    after: Sequence[dict[str, Any]], before: Sequence[dict[str, Any]]
) -> Interval | None:
    """The paired interval of the circular accuracy's change, question by question
    (evaluations cached by earlier versions kept no per-question verdicts: none)."""
    if not before:
        return None
    later, earlier = _verdicts(after), _verdicts(before)
    if later is None or earlier is None:
        return None
    return paired_question_bootstrap_over_seeds(later, earlier)


def _verdicts(
    generals: Sequence[dict[str, Any] | None], key: str = "questions"
) -> list[dict[str, float]] | None:
    verdicts = [g.get(key) if g else None for g in generals]
    return None if any(not v for v in verdicts) else verdicts  # type: ignore[return-value]


def _chance_row(
    cell: CellId, split: str, modality: str, records: list[ItemRecord], chance: Mapping[str, float]
) -> list[ResultRow]:
    """The accuracy of guessing on the same items: a model near it knew nothing to forget."""
    odds = [chance[r.item_id] for r in records if r.item_id in chance]
    if len(odds) != len(records):
        return []
    return [cell.row(split, modality, "chance", sum(odds) / len(odds), len(odds))]


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values)


def _groups(splits: Mapping[str, Sequence[str]]) -> Iterator[tuple[str, Sequence[str], str]]:
    """(split, its people, modality) for every non-empty split and each modality, pooled last."""
    for split, people in splits.items():
        if people:
            for modality in (*MODALITIES, "all"):
                yield split, people, modality


def _select(
    records: Sequence[ItemRecord], people: Sequence[str], modality: str
) -> list[ItemRecord]:
    """The records of ``people`` in ``modality`` (``all``: both)."""
    wanted = set(people)
    return [
        r
        for r in records
        if r.entity_id in wanted and (modality == "all" or r.modality.value == modality)
    ]


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

    def measure(
        self, state: str, model_loader: Any, config: str, people: Sequence[str]
    ) -> Measurement:
        """Records of the model state ``state`` (a stable name) on ``people``; ``model_loader``
        returns (model, processor) and is called only when the result is not cached."""
        people = sorted(people)
        key = content_key(state, config, people, self.cfg.model_dump(mode="json"), self.seed)
        if key in self._recent:
            self._recent.move_to_end(key)
            return self._recent[key]
        cached = self.store.read_json("evals", f"{key}.json")
        if cached is not None:
            return self._remember(key, _measurement_from(cached))
        model, processor = model_loader()
        measurement = self._remember(
            key, self.evaluate(model, processor, self.items(config, people))
        )
        self.store.write_json(
            {
                "state": state,
                "config": config,
                "people": people,
                "mcq": records_to_dicts(measurement.mcq),
                "general": measurement.general,
                "chance": measurement.chance,
            },
            "evals",
            f"{key}.json",
        )
        return measurement

    def _remember(self, key: str, measurement: Measurement) -> Measurement:
        self._recent[key] = measurement
        if len(self._recent) > RECENT_MEASUREMENTS:
            self._recent.popitem(last=False)
        return measurement

    def evaluate(self, model: nn.Module, processor: Any, items: Sequence[QAItem]) -> Measurement:
        cfg = MCQConfig(
            batch_size=self.cfg.batch_size,
            scorer=self.cfg.scorer,
            max_new_tokens=self.cfg.max_new_tokens,
            seed=self.seed,
        )
        records = (
            score_mcq(model, processor, list(items), cfg, cache=self.encodings) if items else []
        )
        general = None
        if self.general_rows:
            result = evaluate_mmbench(
                model, processor, self.general_rows, cfg, cache=self.encodings
            )
            # Per-question circular verdicts too: a change's paired interval needs them.
            keys = ("scorer", "circular", "vanilla", "categories", "questions")
            general = {k: result[k] for k in keys}
            general["vanilla_questions"] = result["vanilla_questions"]
        chance = {i.id: 1 / len(clean_options(i.options)) for i in items if i.options}
        return Measurement(records, general, chance)


def _measurement_from(data: dict[str, Any]) -> Measurement:
    return Measurement(
        records_from_dicts(data["mcq"]), data.get("general"), data.get("chance") or {}
    )
