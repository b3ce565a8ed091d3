"""The rows of a run's ``results.jsonl``: one measured number each.

A row is identified by its *cell* — (scenario, method, setting, request) — plus what was
measured: (split, modality, metric). Values are fractions in [0, 1] (accuracies, PEBench
scores); ``value`` is ``None`` only on a status row.

Fields:

- ``scenario``: the config section's name (``finetuned``, ``pretrained``, ``sequential``,
  ``scope``, ``pebench``, or any name the user gave a section); ``kind`` is its scenario type.
- ``method``: the method entry's label (``before`` for the model before any request).
- ``setting``: the variant inside a scenario — ``""`` when there is none; sequential:
  ``sequential`` or ``batch`` (the same forget data in one request); scope: the scope's label
  (``llm``, ``projector+llm``, ``vision+projector+llm``); pebench: ``person`` or ``event``.
- ``request``: 0 for ``before``; k (1-based) after request k; a one-request cell has 1.
  ``requests`` is the cell's number of requests (K).
- ``split``: ``forget`` / ``retain`` (MCQ on those people), ``general`` (MMBench-format);
  sequential adds ``current`` (the subset of request k), ``forgotten`` (subsets 1..k),
  ``pending`` (subsets k+1..K; absent after the last); pebench: ``efficacy``, ``generality``,
  ``retain``, ``scope``.
- ``modality``: ``multimodal``, ``text`` or ``all``.
- ``metric``: ``accuracy`` (MCQ), ``chance`` (the accuracy of guessing on the same items: the
  floor an accuracy can fall to), ``circular`` / ``vanilla`` (general capability), ``score``
  (PEBench, higher is better), ``gap`` (sequential scenario, in the last request's cell: its
  value minus the one-batch request's on the same people and questions, with ``low`` /
  ``high`` the paired 95 % interval of that difference), ``contrast`` (in a cell of the
  finetuned or pretrained scenario, or in the last request's cell of a sequential chain:
  its value minus the method named in ``versus``; in a
  cell of the scope ablation: minus the same method under the scope named in ``versus``; on
  the same people and questions, with the paired 95 % interval; one row per pair that
  finished, the earlier of the config first). Timings are not
  results (they differ from run to run): the manifest keeps each stage's ``seconds``,
  ``train_seconds`` and ``eval_seconds``.
- ``low`` / ``high``: the value's 95 % interval (:mod:`pulse.eval.intervals`): MCQ accuracy
  by a bootstrap over people, general capability by the Wilson interval over questions,
  PEBench scores by a bootstrap over people / events or images
  (:mod:`pulse.protocol.metrics.pebench_score`);
  ``None`` on ``chance`` rows, with fewer than two units, and in rows of earlier versions.
- ``change_low`` / ``change_high``: the 95 % interval of the change against the ``before`` row
  (this value minus before's, on the same questions), by a *paired* bootstrap over people
  (MCQ) or questions (general capability, circular only); ``None`` on the before row itself
  and wherever ``low`` is.
- ``repeat`` / ``seeds``: with a run's ``repeats`` above 1 every request is trained under
  ``repeats`` seeds (``seed``, ``seed + 1``, ...) on the same people and questions. A row of
  one seed's training has ``repeat`` = its index (0-based); the cell's result pools them:
  ``repeat`` ``None``, ``seeds`` = how many finished, ``value`` the mean over those seeds,
  ``low`` / ``high`` and the change's interval from a bootstrap that draws seeds as well as
  people or questions (:mod:`pulse.eval.intervals`). Without repeats every row is the cell's
  result (``repeat`` ``None``, ``seeds`` 1); the before row never repeats (nothing trains).
- ``status``: ``ok``; ``diverged`` or ``failed`` on a *status row* (split ``""``, modality
  ``all``, metric ``status``, value ``None``, ``detail`` saying what happened) — a cell that
  did not finish has that single row instead of measurements.

Forget-type splits (``forget``, ``current``, ``forgotten``, PEBench ``efficacy`` excepted) are
"lower is better" after unlearning; everything else is "higher is better".
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import MISSING, asdict, dataclass, fields
from math import isfinite
from pathlib import Path
from typing import Any

from pulse.errors import DataError
from pulse.files import decode_text, write_text

RESULTS_FILE = "results.jsonl"
STATUSES = ("ok", "diverged", "failed")


@dataclass(frozen=True)
class ResultRow:
    scenario: str
    kind: str
    method: str
    setting: str
    request: int
    requests: int
    split: str
    modality: str
    metric: str
    value: float | None
    n: int = 0
    status: str = "ok"
    detail: str | None = None
    low: float | None = None
    high: float | None = None
    change_low: float | None = None
    change_high: float | None = None
    repeat: int | None = None  # one training seed's row (index), or None: the cell's result
    seeds: int = 1  # training seeds the value pools
    versus: str | None = None  # contrast rows: the method (or scope) compared with
    # A point along the request (train.eval_every): the optimizer step its state was taken at
    # (0: before; the request's last step: its own state); matched-forgetting rows: the
    # (interpolated) step where the path reached the target. None: the cell's result.
    step: float | None = None
    # Matched-forgetting rows of several training seeds: how many of their paths reached the
    # target (the values are those seeds'). None elsewhere.
    seeds_reached: int | None = None

    @property
    def cell(self) -> tuple[str, str, str, int]:
        return (self.scenario, self.method, self.setting, self.request)

    @property
    def key(self) -> tuple[Any, ...]:
        return (
            *self.cell,
            self.split,
            self.modality,
            self.metric,
            self.repeat,
            self.versus,
            self.step,
        )

    @property
    def on_path(self) -> bool:
        """A point along a request (a trajectory row), not the cell's result."""
        return self.step is not None and self.metric not in PATH_SUMMARIES

    @property
    def pooled(self) -> bool:
        """Whether the row is its cell's result (not one training seed's among several)."""
        return self.repeat is None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("step", "seeds_reached"):  # absent where unset, as before they existed
            if data[name] is None:
                del data[name]
        return data


_FIELDS = {f.name: f for f in fields(ResultRow)}
NUMBER_FIELDS = ("value", "low", "high", "change_low", "change_high", "step")
# Rows that summarise a path (pulse.protocol.trajectory) and carry a step without being a point.
PATH_SUMMARIES = ("matched", "stopped")
_REQUIRED = [f.name for f in fields(ResultRow) if f.default is MISSING]


def status_row(
    scenario: str,
    kind: str,
    method: str,
    setting: str,
    request: int,
    requests: int,
    status: str,
    detail: str,
) -> ResultRow:
    """The single row of a cell that diverged or failed."""
    return ResultRow(
        scenario,
        kind,
        method,
        setting,
        request,
        requests,
        "",
        "all",
        "status",
        None,
        0,
        status,
        detail,
    )


_TEXT_FIELDS = ("scenario", "kind", "method", "setting", "split", "modality", "metric")
_COUNT_FIELDS = ("request", "requests", "n")


def row_from_dict(data: dict[str, Any], where: str = "row") -> ResultRow:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}")
    missing = [name for name in _REQUIRED if name not in data]
    if missing:
        raise ValueError(f"{where}: missing field {missing[0]!r}")
    unknown = [name for name in data if name not in _FIELDS]
    if unknown:
        raise ValueError(f"{where}: unknown field {unknown[0]!r}")
    if data.get("status", "ok") not in STATUSES:
        raise ValueError(f"{where}: status must be one of {', '.join(STATUSES)}")
    for name in _TEXT_FIELDS:
        if name in data and not isinstance(data[name], str):
            raise ValueError(f"{where}: field {name!r} must be a string, got {data[name]!r}")
    for name in _COUNT_FIELDS:
        value = data.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{where}: field {name!r} must be a count (integer >= 0)")
    detail = data.get("detail")
    if detail is not None and not isinstance(detail, str):
        raise ValueError(f"{where}: field 'detail' must be a string or null, got {detail!r}")
    repeat, seeds = data.get("repeat"), data.get("seeds", 1)
    if repeat is not None and (isinstance(repeat, bool) or not isinstance(repeat, int)):
        raise ValueError(f"{where}: field 'repeat' must be an integer or null, got {repeat!r}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"{where}: field 'seeds' must be a positive integer, got {seeds!r}")
    reached = data.get("seeds_reached")
    if reached is not None and (
        isinstance(reached, bool) or not isinstance(reached, int) or not 0 <= reached <= seeds
    ):
        raise ValueError(
            f"{where}: field 'seeds_reached' must be null or a count up to 'seeds', got {reached!r}"
        )
    versus = data.get("versus")
    if versus is not None and not isinstance(versus, str):
        raise ValueError(f"{where}: field 'versus' must be a method label or null, got {versus!r}")
    for name in NUMBER_FIELDS:
        value = data.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not isfinite(value)
        ):
            raise ValueError(f"{where}: field {name!r} must be a number or null, got {value!r}")
    return ResultRow(**data)


def read_results(path: str | Path, skipped: list[int] | None = None) -> list[ResultRow]:
    """Every row of a ``results.jsonl``. A malformed line is a :class:`DataError` naming it;
    with ``skipped`` given, its line number goes there instead and reading goes on."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot be read ({exc.strerror})") from None
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = decode_text(raw, path, row=number)
            rows.append(row_from_dict(json.loads(line), where=f"line {number}"))
        except (ValueError, TypeError, DataError) as exc:
            if skipped is None:
                if isinstance(exc, DataError):
                    raise
                detail = str(exc).removeprefix(f"line {number}: ")
                raise DataError(path, detail, row=number) from None
            skipped.append(number)
    return rows


def dump_rows(rows: Iterable[ResultRow]) -> str:
    return "".join(json.dumps(r.to_dict(), sort_keys=True) + "\n" for r in rows)


def write_results(path: str | Path, rows: Iterable[ResultRow]) -> Path:
    """Write ``rows`` atomically, sorted by cell then measurement (a stable, diffable file)."""
    ordered = sorted(rows, key=_sort_key)
    return write_text(path, dump_rows(ordered))


def _sort_key(row: ResultRow) -> tuple[Any, ...]:
    return (
        row.scenario,
        row.setting,
        row.method != "before",
        row.method,
        row.request,
        -1 if row.repeat is None else row.repeat,
        row.split,
        row.modality,
        row.metric,
        row.versus or "",
        -1 if row.step is None else row.step,
    )
