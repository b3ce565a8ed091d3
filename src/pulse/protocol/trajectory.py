"""Trajectories along a request and comparisons at matched forgetting.

With ``train.eval_every`` a request's model is scored while it trains (:mod:`pulse.methods.
points`): each point is a state of the request (``request:<key>@<step>``) whose per-item
records are cached like any evaluation, and its rows are the cell's rows with ``step`` set (0:
the model before the request; the last step: the request's own state), so every metric and
interval applies along the path.

**Matched forgetting.** Methods forget at different speeds, so their costs are compared where
each path first brings the forget accuracy (pooled modalities) down to a *target*: the
scenario's oracle's forget accuracy where it has an oracle, else ``matched.target``, else the
forget questions' chance level. Between two evaluated points the path is taken as linear: at
the first point at or below the target, the step, the retain accuracy and the general
capability are interpolated with the weight that puts the forget accuracy on the target. A path
that never reaches it is "not reached".

The 95 % interval of a value at the target comes from the same bootstrap every accuracy uses,
carried along the path: each replicate draws forget people, retain people and general-capability
questions once and applies that draw to every point (and to the oracle, whose forget accuracy
on the drawn people is that replicate's target), finds where that replicate's path reaches its
target and reads the value there. The percentile interval is taken over the replicates; when
fewer than 95 % of them reach the target, the value gets no interval (the row says how many
did). With ``repeats``, the path of the first training seed is used.

``train.stop_at`` ends a request at the first evaluated point at or below the target (or a
given level): ``result.json`` keeps the step and the reason, and the cell a ``stopped`` row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pulse.eval.intervals import LEVEL, RESAMPLES
from pulse.eval.records import tally
from pulse.protocol.cells import CellId, Population, RequestOutcome, Splits
from pulse.protocol.measure import metric_rows
from pulse.protocol.measurement import Measurement
from pulse.protocol.metrics import Group
from pulse.protocol.metrics.accuracy import ACCURACY
from pulse.protocol.results import ResultRow

if TYPE_CHECKING:
    from pulse.methods.points import PointPlan
    from pulse.protocol.engine import Engine

MATCHED = "matched"  # rows of values at matched forgetting (split forget: the target)
STOPPED = "stopped"  # the row of a request stopped early (value: its forget accuracy there)
FORGET = "forget"


class PointMissing(Exception):
    """A point's evaluation is not in the run directory (it is only made while training)."""


# --- interpolation --------------------------------------------------------------------------


def crossing(forget: Sequence[float], target: float) -> tuple[int, float] | None:
    """Where a path first reaches ``target``: the index ``i`` of the first point whose forget
    accuracy is at or below it and the weight ``w`` of point ``i`` against point ``i - 1``
    that puts the line between them on the target (1 at ``i`` = 0); None: never."""
    for i, value in enumerate(forget):
        if value <= target:
            if i == 0:
                return 0, 1.0
            previous = forget[i - 1]
            return i, (previous - target) / (previous - value)
    return None


def at(values: Sequence[float], where: tuple[int, float]) -> float:
    """The value of a path at a crossing (linear between the two points around it)."""
    i, w = where
    return values[0] if i == 0 else values[i - 1] + w * (values[i] - values[i - 1])


@dataclass(frozen=True)
class Value:
    value: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Matched:
    """A path at the target: the step, the target and each value there, or (``step`` None)
    never reached, with the lowest forget accuracy it got to and where."""

    target: Value
    step: float | None
    values: dict[str, Value]  # "retain", "general"
    reached: float  # the share of bootstrap replicates that reached the target
    lowest: tuple[float, int] | None = None  # not reached: (forget accuracy, step)
    counts: dict[str, int] = field(default_factory=dict)  # people (or questions) of each


def matched(
    steps: Sequence[int],
    forget: Sequence[float],
    others: dict[str, Sequence[float]],
    target: float,
    replicates: tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]] | None = None,
) -> Matched:
    """The path (``forget`` and ``others`` at ``steps``) at ``target``; ``replicates`` (the
    bootstrap's forget paths [B, points], targets [B] and other paths) give the intervals."""
    where = crossing(forget, target)
    target_value = Value(target)
    if replicates is not None and np.ptp(replicates[1]) > 0:  # an oracle's, drawn each time
        target_value = Value(target, *_percentiles(replicates[1]))
    if where is None:
        low = int(np.argmin(forget))
        return Matched(target_value, None, {}, 0.0, (forget[low], steps[low]))
    step = at([float(s) for s in steps], where)
    values = {name: Value(at(path, where)) for name, path in others.items()}
    reached = 1.0
    if replicates is not None:
        paths, targets, other_paths = replicates
        found: dict[str, list[float]] = {name: [] for name in others}
        hits = 0
        for b in range(len(targets)):
            here = crossing(paths[b], float(targets[b]))
            if here is None:
                continue
            hits += 1
            for name in others:
                found[name].append(at(other_paths[name][b], here))
        reached = hits / len(targets)
        if reached >= LEVEL:
            values = {
                name: Value(v.value, *_percentiles(np.array(found[name])))
                for name, v in values.items()
            }
    return Matched(target_value, step, values, reached)


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    tail = (1 - LEVEL) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


# --- the bootstrap along a path -------------------------------------------------------------


def _person_sums(states: Sequence[Measurement], people: Sequence[str]) -> np.ndarray | None:
    """[states, people] correct answers and the [people] question counts of a split (pooled
    modalities), or None when the states do not hold the same questions."""
    group = Group(FORGET, "all", tuple(people))
    order = sorted(people)
    sums, counts = [], None
    for state in states:
        records = ACCURACY.select(state, group)
        by_person: dict[str, list[float]] = {p: [0.0, 0.0] for p in order}
        for record in records:
            by_person[record.entity_id][0] += record.value
            by_person[record.entity_id][1] += 1
        these = [by_person[p][1] for p in order]
        if counts is None:
            counts = these
        elif these != counts:
            return None
        sums.append([by_person[p][0] for p in order])
    if counts is None or sum(counts) == 0:
        return None
    return np.array([*sums, counts], dtype=float)


def _drawn(table: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """[B, states] accuracies of each replicate's draw of people (the last row: counts)."""
    sums, counts = table[:-1], table[-1]
    return sums[:, draws].sum(axis=2).T / counts[draws].sum(axis=1)[:, None]


def _verdicts(states: Sequence[Measurement]) -> np.ndarray | None:
    generals = [s.general for s in states]
    if any(g is None or not g.questions for g in generals):
        return None
    questions = sorted(generals[0].questions)  # type: ignore[union-attr]
    if any(sorted(g.questions) != questions for g in generals):  # type: ignore[union-attr]
        return None
    return np.array([[g.questions[q] for q in questions] for g in generals], dtype=float)  # type: ignore[union-attr]


def path_at_target(
    steps: Sequence[int],
    states: Sequence[Measurement],
    splits: Splits,
    target: float | None,
    oracle: Measurement | None,
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> Matched | None:
    """A path of states at matched forgetting with its bootstrap intervals (see the module);
    the target is ``oracle``'s forget accuracy when given, else ``target``. None when the
    states cannot be compared (other questions from one point to the next)."""
    forget = _person_sums(states, splits[FORGET])
    retain = _person_sums(states, splits["retain"]) if splits.get("retain") else None
    if forget is None:
        return None
    oracle_sums = _person_sums([oracle], splits[FORGET]) if oracle is not None else None
    if oracle is not None:
        if oracle_sums is None or not np.array_equal(oracle_sums[-1], forget[-1]):
            return None
        target = float(oracle_sums[0].sum() / oracle_sums[-1].sum())
    assert target is not None
    rng = np.random.default_rng(seed)
    forget_draws = rng.integers(0, forget.shape[1], size=(resamples, forget.shape[1]))
    forget_paths = _drawn(forget, forget_draws)
    targets = (
        _drawn(oracle_sums, forget_draws)[:, 0]
        if oracle_sums is not None
        else np.full(resamples, target)
    )
    point = _drawn(forget, np.arange(forget.shape[1])[None, :])[0]
    others: dict[str, list[float]] = {}
    other_paths: dict[str, np.ndarray] = {}
    if retain is not None:
        draws = rng.integers(0, retain.shape[1], size=(resamples, retain.shape[1]))
        others["retain"] = list(_drawn(retain, np.arange(retain.shape[1])[None, :])[0])
        other_paths["retain"] = _drawn(retain, draws)
    general = _verdicts(states)
    if general is not None:
        draws = rng.integers(0, general.shape[1], size=(resamples, general.shape[1]))
        others["general"] = list(general.mean(axis=1))
        other_paths["general"] = general[:, draws].mean(axis=2).T
    found = matched(steps, list(point), others, target, (forget_paths, targets, other_paths))
    counts = {FORGET: forget.shape[1], **{k: v.shape[1] for k, v in other_paths.items()}}
    return replace(found, counts=counts)


# --- along a request in the protocol --------------------------------------------------------


def point_state(out_dir: Path, step: int) -> str:
    """The state name of a request's point (its evaluations' cache key)."""
    return f"request:{out_dir.name}@{step}"


@dataclass(frozen=True)
class Along:
    """What a request of the protocol evaluates along the way: the people of its cell, the
    stop level (``stop_at`` resolved to a number) and whether general capability is scored."""

    engine: Engine
    group: Population
    splits: Splits
    every: str
    general: bool
    stop: float | None = None
    stop_reason: str = ""

    def plan(self, out_dir: Path) -> PointPlan:
        from pulse.methods.points import PointPlan

        def evaluate(step: int, model: Any, processor: Any) -> str | None:
            return self._point(out_dir, step, (model, processor))

        return PointPlan(self.every, evaluate)

    def _point(self, out_dir: Path, step: int, model: tuple[Any, Any]) -> str | None:
        measured = measure_point(self.engine, self.group, out_dir, step, self.general, model)
        if self.stop is None:
            return None
        forget = forget_accuracy(measured, self.splits)
        if forget is not None and forget <= self.stop:
            return (
                f"forget accuracy {forget * 100:.1f} % at or below {self.stop * 100:.1f} % "
                f"({self.stop_reason})"
            )
        return None


def forget_accuracy(measured: Measurement, splits: Splits) -> float | None:
    records = ACCURACY.select(measured, Group(FORGET, "all", tuple(splits[FORGET])))
    return tally(records).mean if records else None


def measure_point(
    engine: Engine,
    group: Population,
    out_dir: Path,
    step: int,
    general: bool,
    model: tuple[Any, Any] | None = None,
) -> Measurement:
    """A point's evaluation: made from ``model`` while the request trains, read back after
    (:class:`PointMissing` when it is not there: a point cannot be evaluated afterwards)."""

    def load() -> tuple[Any, Any]:
        if model is None:
            raise PointMissing(f"{point_state(out_dir, step)}: no evaluation in the run directory")
        return model

    return engine.measurer.measure(
        point_state(out_dir, step), load, group.config, group.people, general=general
    )


def along(
    engine: Engine, scenario: str, group: Population, splits: Splits, train: Any
) -> Along | None:
    """The evaluation along a request of ``scenario``'s cells, when its training asks for it."""
    if not train.eval_every:
        return None
    stop, reason = None, ""
    if train.stop_at == "target":
        stop, reason = target_of(engine, scenario, group, splits)
        reason = f"the target: {reason}"
    elif train.stop_at is not None:
        stop, reason = float(train.stop_at), "train.stop_at"
    return Along(engine, group, splits, train.eval_every, train.eval_general, stop, reason)


def target_of(
    engine: Engine, scenario: str, group: Population, splits: Splits
) -> tuple[float, str]:
    """The matched-forgetting target of a scenario's cells and where it comes from."""
    oracle = engine.measure_oracle(group)
    if oracle is not None:
        value = forget_accuracy(oracle, splits)
        if value is not None:
            return value, "the oracle's forget accuracy"
    if engine.config.matched.target is not None:
        return engine.config.matched.target, "matched.target"
    before = engine.measure_model(group)
    forget = set(splits[FORGET])
    items = [r.item_id for r in before.mcq or [] if r.entity_id in forget]
    chances = [before.chance[i] for i in items if before.chance and i in before.chance]
    return (sum(chances) / len(chances) if chances else 0.0), "chance on the forget questions"


def point_rows(
    engine: Engine,
    cell: CellId,
    outcome: RequestOutcome,
    group: Population,
    splits: Splits,
    general: bool,
) -> list[ResultRow]:
    """The rows of every point along a finished request (step 0: before; its last step: its
    own state), and its ``stopped`` row when it stopped early."""
    path = request_path(engine, outcome, group, general)
    if path is None:
        return []
    steps, states, record = path
    before, oracle = engine.measure_model(group), engine.measure_oracle(group)
    rows: list[ResultRow] = []
    for step, state in zip(steps, states, strict=True):
        rows += [replace(r, step=step) for r in metric_rows(cell, [state], splits, before, oracle)]
    stopped = record.get("stopped")
    if isinstance(stopped, dict):
        forget = forget_accuracy(states[-1], splits)
        if forget is not None:
            row = cell.row(FORGET, "all", STOPPED, forget, len(splits[FORGET]))
            rows.append(replace(row, step=stopped.get("step"), detail=str(stopped.get("reason"))))
    return rows


def request_path(
    engine: Engine, outcome: RequestOutcome, group: Population, general: bool
) -> tuple[list[int], list[Measurement], dict[str, Any]] | None:
    """A finished request's evaluated states in step order: before (0), its points, its own
    state (last step); None when it evaluated nothing along the way. A point whose evaluation
    is gone is left out, said in one line."""
    from pulse.methods.request import RequestResult

    if not outcome.ok or outcome.out_dir is None:
        return None
    record = RequestResult.read(outcome.out_dir).record
    points = record.get("eval_steps") or []
    if not record.get("eval_every"):
        return None
    steps, states = [0], [engine.measure_model(group)]
    for step in points:
        try:
            states.append(measure_point(engine, group, outcome.out_dir, int(step), general))
        except PointMissing as exc:
            engine.say(f"pulse: {exc}; the point is left out")
            continue
        steps.append(int(step))
    steps.append(int(record.get("steps") or 0))
    states.append(engine.measure_request(outcome, group))
    if not general:
        states = [replace(s, general=None) for s in states]
    return steps, states, record


def matched_rows(
    engine: Engine,
    scenario: str,
    group: Population,
    splits: Splits,
    cells: dict[CellId, RequestOutcome],
    general: Callable[[CellId], bool],
) -> list[ResultRow]:
    """Each cell's path at matched forgetting (the first training seed's request)."""
    target, source = target_of(engine, scenario, group, splits)
    oracle = engine.measure_oracle(group)
    rows: list[ResultRow] = []
    for cell, outcome in cells.items():
        path = request_path(engine, outcome, group, general(cell))
        if path is None:
            continue
        steps, states, _ = path
        found = path_at_target(steps, states, splits, target, oracle, seed=engine.config.seed)
        if found is None:
            continue
        rows += matched_to_rows(cell, found, source)
    return rows


def matched_to_rows(cell: CellId, found: Matched, source: str) -> list[ResultRow]:
    """The ``matched`` rows of a cell: the target (split forget; ``step`` None: not reached,
    the detail says how far it got) and each value there."""
    detail = f"target: {source}"
    if found.step is None and found.lowest is not None:
        lowest, where = found.lowest
        detail += f"; not reached (lowest forget accuracy {lowest * 100:.1f} % at step {where})"
    elif found.reached < LEVEL:
        detail += f"; reached in {found.reached * 100:.0f} % of the bootstrap's resamples"
    target = found.target
    rows = [
        replace(
            cell.row(FORGET, "all", MATCHED, target.value, found.counts.get(FORGET, 0)),
            low=target.low,
            high=target.high,
            step=found.step,
            detail=detail,
        )
    ]
    for split, value in found.values.items():
        row = cell.row(split, "all", MATCHED, value.value, found.counts.get(split, 0))
        rows.append(replace(row, low=value.low, high=value.high, step=found.step))
    return rows
