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
did).

**Training seeds** (``repeats``): every seed's request is evaluated along its path and placed
at the target on its own; the value is the mean over the seeds of each seed's value at its own
crossing, and the step the mean of their steps, as every accuracy of the run is the mean over
seeds. The interval is the hierarchical bootstrap of :mod:`pulse.eval.intervals` carried along
the paths: each replicate draws the people and questions once for every seed and point, reads
each seed's drawn path at the drawn target, then draws the seeds with replacement and averages
theirs. A seed that never reaches the target is said ("reached by 2 of 3 training seeds"): the
value is then the mean of the seeds that did, and the replicates that pick a seed that did not
reach have no value, so the interval is usually left out (fewer than 95 % have one).

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
    """A path (or several training seeds' paths) at the target: the step, the target and each
    value there, or (``step`` None) never reached, with the lowest forget accuracy it got to
    and where. With seeds: each the mean over the seeds that reached it (``seeds_reached`` of
    ``seeds``)."""

    target: Value
    step: float | None
    values: dict[str, Value]  # "retain", "general"
    reached: float  # the share of bootstrap replicates that reached the target
    lowest: tuple[float, int] | None = None  # not reached: (forget accuracy, step)
    counts: dict[str, int] = field(default_factory=dict)  # people (or questions) of each
    seeds: int = 1
    seeds_reached: int = 1


@dataclass(frozen=True)
class SeedPath:
    """One training seed's path: the steps, the forget accuracy and the other values at each
    point, and (for intervals) the bootstrap's replicates of each: forget [B, points] and the
    others {name: [B, points]}, every replicate drawn the same way for every seed."""

    steps: Sequence[float]
    forget: Sequence[float]
    others: dict[str, Sequence[float]]
    replicate_forget: np.ndarray | None = None
    replicate_others: dict[str, np.ndarray] = field(default_factory=dict)


def matched(
    steps: Sequence[int],
    forget: Sequence[float],
    others: dict[str, Sequence[float]],
    target: float,
    replicates: tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]] | None = None,
) -> Matched:
    """The path (``forget`` and ``others`` at ``steps``) at ``target``; ``replicates`` (the
    bootstrap's forget paths [B, points], targets [B] and other paths) give the intervals."""
    if replicates is None:
        return pooled([SeedPath(steps, forget, others)], target)
    paths, targets, other_paths = replicates
    return pooled([SeedPath(steps, forget, others, paths, other_paths)], target, targets)


def pooled(
    paths: Sequence[SeedPath],
    target: float,
    targets: np.ndarray | None = None,
    picks: np.ndarray | None = None,
) -> Matched:
    """Several training seeds' paths at ``target``, pooled as every accuracy pools seeds
    (:mod:`pulse.eval.intervals`): each value is the mean over the seeds of that seed's value
    at its own crossing (over the seeds that reached the target: how many did is kept).

    The interval is the hierarchical bootstrap's: replicate ``b`` reads each seed's drawn path
    at its drawn target (``targets[b]``; the same people for every seed and point), then
    averages the seeds ``picks[b]`` (drawn with replacement; one seed: itself); a replicate
    where a picked seed never reaches its target has no value. The percentile interval is
    taken over the replicates with a value, and only when at least 95 % of them have one."""
    seeds = len(paths)
    target_value = Value(target)
    if targets is not None and np.ptp(targets) > 0:  # an oracle's, drawn each time
        target_value = Value(target, *_percentiles(targets))
    crossings = [crossing(p.forget, target) for p in paths]
    reached_by = [(p, c) for p, c in zip(paths, crossings, strict=True) if c is not None]
    if not reached_by:
        lows = [(float(min(p.forget)), p.steps[int(np.argmin(p.forget))]) for p in paths]
        lowest, step = min(lows)
        return Matched(
            target_value, None, {}, 0.0, (lowest, int(step)), seeds=seeds, seeds_reached=0
        )
    names = [n for n in paths[0].others if all(n in p.others for p in paths)]
    step = float(np.mean([at([float(s) for s in p.steps], c) for p, c in reached_by]))
    values = {
        name: Value(float(np.mean([at(p.others[name], c) for p, c in reached_by])))
        for name in names
    }
    reached = 1.0
    if targets is not None and all(p.replicate_forget is not None for p in paths):
        resamples = len(targets)
        # Each seed's value at its own crossing in each replicate [seeds, B, names], and
        # whether it had one [seeds, B].
        found = np.zeros((seeds, resamples, len(names)))
        hit = np.zeros((seeds, resamples), dtype=bool)
        for s, path in enumerate(paths):
            assert path.replicate_forget is not None
            for b in range(resamples):
                here = crossing(path.replicate_forget[b], float(targets[b]))
                if here is not None:
                    hit[s, b] = True
                    for j, name in enumerate(names):
                        found[s, b, j] = at(path.replicate_others[name][b], here)
        if seeds == 1:
            means, hits = found[0], hit[0]
        else:
            assert picks is not None, "several seeds need the replicates' draws of seeds"
            rows = np.arange(resamples)[:, None]
            means = found[picks, rows].mean(axis=1)
            hits = hit[picks, rows].all(axis=1)
        reached = float(hits.mean())
        if reached >= LEVEL:
            values = {
                name: Value(v.value, *_percentiles(means[hits, j]))
                for j, (name, v) in enumerate(values.items())
            }
    return Matched(target_value, step, values, reached, seeds=seeds, seeds_reached=len(reached_by))


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


def _verdicts(states: Sequence[Measurement]) -> tuple[list[str], np.ndarray] | None:
    """The general-capability questions and their [states, questions] verdicts, or None when
    a state has none or another set of questions."""
    generals = [s.general for s in states]
    if any(g is None or not g.questions for g in generals):
        return None
    questions = sorted(generals[0].questions)  # type: ignore[union-attr]
    if any(sorted(g.questions) != questions for g in generals):  # type: ignore[union-attr]
        return None
    verdicts = [[g.questions[q] for q in questions] for g in generals]  # type: ignore[union-attr]
    return questions, np.array(verdicts, dtype=float)


# One training seed's path: the steps and the state evaluated at each.
SeedStates = tuple[Sequence[int], Sequence[Measurement]]


def path_at_target(
    paths: Sequence[SeedStates],
    splits: Splits,
    target: float | None,
    oracle: Measurement | None,
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> Matched | None:
    """Training seeds' paths of states at matched forgetting, pooled over the seeds, with
    their bootstrap intervals (see the module and :func:`pooled`); the target is ``oracle``'s
    forget accuracy when given, else ``target``. None when the states cannot be compared
    (other questions from one point, or one seed, to the next)."""
    if not paths:
        return None
    tables = [_person_sums(states, splits[FORGET]) for _, states in paths]
    forget_tables = [t for t in tables if t is not None]
    if len(forget_tables) < len(paths) or not _same_counts(forget_tables):
        return None
    counts = forget_tables[0][-1]
    oracle_sums = _person_sums([oracle], splits[FORGET]) if oracle is not None else None
    if oracle is not None:
        if oracle_sums is None or not np.array_equal(oracle_sums[-1], counts):
            return None
        target = float(oracle_sums[0].sum() / oracle_sums[-1].sum())
    assert target is not None
    rng = np.random.default_rng(seed)
    people = len(counts)
    forget_draws = rng.integers(0, people, size=(resamples, people))
    targets = (
        _drawn(oracle_sums, forget_draws)[:, 0]
        if oracle_sums is not None
        else np.full(resamples, target)
    )
    whole = np.arange(people)[None, :]
    built = [
        SeedPath(
            steps,
            list(_drawn(table, whole)[0]),
            {},
            _drawn(table, forget_draws),
        )
        for (steps, _), table in zip(paths, forget_tables, strict=True)
    ]
    sizes = {FORGET: people}
    if splits.get("retain"):
        retains = [_person_sums(states, splits["retain"]) for _, states in paths]
        if all(r is not None for r in retains) and _same_counts(retains):  # type: ignore[arg-type]
            n = retains[0].shape[1]  # type: ignore[union-attr]
            draws = rng.integers(0, n, size=(resamples, n))
            for path, table in zip(built, retains, strict=True):
                assert table is not None
                path.others["retain"] = list(_drawn(table, np.arange(n)[None, :])[0])
                path.replicate_others["retain"] = _drawn(table, draws)
            sizes["retain"] = n
    generals = [_verdicts(states) for _, states in paths]
    if all(g is not None for g in generals) and len({tuple(g[0]) for g in generals}) == 1:  # type: ignore[index]
        n = len(generals[0][0])  # type: ignore[index]
        draws = rng.integers(0, n, size=(resamples, n))
        for path, (_, verdicts) in zip(built, generals, strict=True):  # type: ignore[misc]
            path.others["general"] = list(verdicts.mean(axis=1))
            path.replicate_others["general"] = verdicts[:, draws].mean(axis=2).T
        sizes["general"] = n
    # Drawn after the people and questions: one seed's intervals are as without this step.
    picks = rng.integers(0, len(paths), size=(resamples, len(paths))) if len(paths) > 1 else None
    found = pooled(built, target, targets, picks)
    return replace(found, counts=sizes)


def _same_counts(tables: Sequence[np.ndarray]) -> bool:
    return all(np.array_equal(t[-1], tables[0][-1]) for t in tables)


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
    (:class:`PointMissing` when it is not there: a point cannot be evaluated afterwards). Read
    back, a point evaluated with the other ``general`` setting serves too (a request reused
    from another scenario): without general capability when it has none, or when it was not
    asked for."""

    def load() -> tuple[Any, Any]:
        if model is None:
            raise PointMissing(f"{point_state(out_dir, step)}: no evaluation in the run directory")
        return model

    def measure(with_general: bool) -> Measurement:
        return engine.measurer.measure(
            point_state(out_dir, step), load, group.config, group.people, general=with_general
        )

    if model is not None:
        return measure(general)
    try:
        return measure(general)
    except PointMissing:
        other = measure(not general)
        return other if general else replace(other, general=None)


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
    offset: int = 0,
) -> list[ResultRow]:
    """The rows of every point along a finished request (step 0: before; its last step: its
    own state), and its ``stopped`` row when it stopped early. ``offset``: the steps of the
    requests before it in a sequential chain (its steps count on from there, and the state it
    started from is the previous request's last point, not repeated here)."""
    if offset:
        path = request_points(engine, outcome, group, general, offset)
    else:
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
            at_step = stopped.get("step")
            at_step = None if at_step is None else offset + int(at_step)
            rows.append(replace(row, step=at_step, detail=str(stopped.get("reason"))))
    return rows


def request_path(
    engine: Engine, outcome: RequestOutcome, group: Population, general: bool
) -> tuple[list[int], list[Measurement], dict[str, Any]] | None:
    """A finished request's evaluated states in step order: before (0), its points, its own
    state (last step); None when it evaluated nothing along the way. A point whose evaluation
    is gone is left out, said in one line."""
    found = request_points(engine, outcome, group, general)
    if found is None:
        return None
    steps, states, record = found
    before = engine.measure_model(group)
    before = before if general else replace(before, general=None)
    return [0, *steps], [before, *states], record


def evaluated_along(outcome: RequestOutcome) -> bool:
    """Whether a finished request was evaluated along the way (its ``result.json`` says)."""
    from pulse.methods.request import RequestResult

    if not outcome.ok or outcome.out_dir is None:
        return False
    return bool(RequestResult.read(outcome.out_dir).record.get("eval_every"))


def request_points(
    engine: Engine,
    outcome: RequestOutcome,
    group: Population,
    general: bool,
    offset: int = 0,
    always: bool = False,
) -> tuple[list[int], list[Measurement], dict[str, Any]] | None:
    """A finished request's points and its own state (its last step), steps counted from
    ``offset``; None when it evaluated nothing along the way (``always``: its own state
    alone then)."""
    from pulse.methods.request import RequestResult

    if not outcome.ok or outcome.out_dir is None:
        return None
    record = RequestResult.read(outcome.out_dir).record
    if not record.get("eval_every") and not always:
        return None
    points = (record.get("eval_steps") or []) if record.get("eval_every") else []
    steps, states = [], []
    for step in points:
        try:
            states.append(measure_point(engine, group, outcome.out_dir, int(step), general))
        except PointMissing as exc:
            engine.say(f"pulse: {exc}; the point is left out")
            continue
        steps.append(offset + int(step))
    steps.append(offset + int(record.get("steps") or 0))
    states.append(engine.measure_request(outcome, group))
    if not general:
        states = [replace(s, general=None) for s in states]
    return steps, states, record


def chain_path(
    engine: Engine, chain: Sequence[RequestOutcome], group: Population, general: bool
) -> tuple[list[int], list[Measurement]] | None:
    """A sequential chain's path: before (0), then each request's points and own state in
    order, its steps counted over the chain (a request evaluated along nothing gives its own
    state alone); None when a request did not finish."""
    steps, states = [0], [engine.measure_model(group)]
    for outcome in chain:
        found = request_points(engine, outcome, group, general, steps[-1], always=True)
        if found is None:
            return None
        steps += found[0]
        states += found[1]
    if not general:
        states = [replace(s, general=None) for s in states]
    return steps, states


def matched_rows(
    engine: Engine,
    scenario: str,
    group: Population,
    splits: Splits,
    cells: dict[CellId, Sequence[RequestOutcome]],
    general: Callable[[CellId], bool],
) -> list[ResultRow]:
    """Each cell's paths at matched forgetting, pooled over its training seeds' requests
    (those that finished and evaluated along the way)."""
    target, source = target_of(engine, scenario, group, splits)
    oracle = engine.measure_oracle(group)
    rows: list[ResultRow] = []
    for cell, outcomes in cells.items():
        paths = []
        for outcome in outcomes:
            path = request_path(engine, outcome, group, general(cell))
            if path is not None:
                paths.append(path[:2])
        found = path_at_target(paths, splits, target, oracle, seed=engine.config.seed)
        if found is not None:
            rows += matched_to_rows(cell, found, source)
    return rows


def matched_to_rows(cell: CellId, found: Matched, source: str) -> list[ResultRow]:
    """The ``matched`` rows of a cell: the target (split forget; ``step`` None: not reached,
    the detail says how far it got) and each value there."""
    detail = f"target: {source}"
    if found.step is None and found.lowest is not None:
        lowest, where = found.lowest
        detail += f"; not reached (lowest forget accuracy {lowest * 100:.1f} % at step {where}"
        detail += f", by none of {found.seeds} training seeds)" if found.seeds > 1 else ")"
    elif found.seeds_reached < found.seeds:
        detail += (
            f"; reached by {found.seeds_reached} of {found.seeds} training seeds (the values "
            "are theirs)"
        )
    if found.step is not None and found.reached < LEVEL:
        detail += f"; reached in {found.reached * 100:.0f} % of the bootstrap's resamples"
    target = found.target
    rows = [
        replace(
            cell.row(
                FORGET, "all", MATCHED, target.value, found.counts.get(FORGET, 0), seeds=found.seeds
            ),
            low=target.low,
            high=target.high,
            step=found.step,
            detail=detail,
            seeds_reached=found.seeds_reached if found.seeds > 1 else None,
        )
    ]
    for split, value in found.values.items():
        row = cell.row(
            split, "all", MATCHED, value.value, found.counts.get(split, 0), seeds=found.seeds
        )
        rows.append(replace(row, low=value.low, high=value.high, step=found.step))
    return rows
