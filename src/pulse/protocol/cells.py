"""Where result rows belong: a cell of a scenario's table, and the outcome of its request."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pulse.eval.intervals import Interval
from pulse.protocol.results import ResultRow, status_row

BEFORE = "before"  # the method label of the model before any request
# The method label of the oracle: the model trained like the original without the forget set.
ORACLE = "oracle"
REFERENCES = (BEFORE, ORACLE)  # rows that are references, not methods competing


@dataclass(frozen=True)
class CellId:
    """One cell: a scenario's method (or ``before``) under a setting, after request
    ``request`` of ``requests`` (see :mod:`pulse.protocol.results` for each field). ``kind``
    is the scenario's type, which is its name unless a config section says otherwise."""

    scenario: str
    method: str
    setting: str = ""
    request: int = 1
    requests: int = 1
    kind: str = ""

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", self.scenario)

    @classmethod
    def before(cls, scenario: str, setting: str = "", requests: int = 1) -> CellId:
        """The cell of the model before any request."""
        return cls(scenario, BEFORE, setting, request=0, requests=requests)

    @classmethod
    def oracle(cls, scenario: str, setting: str = "", requests: int = 1) -> CellId:
        """The cell of the oracle (request 0, like before: no request made it)."""
        return cls(scenario, ORACLE, setting, request=0, requests=requests)

    @property
    def _place(self) -> dict[str, object]:
        return {
            "scenario": self.scenario,
            "kind": self.kind,
            "method": self.method,
            "setting": self.setting,
            "request": self.request,
            "requests": self.requests,
        }

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
        return ResultRow(
            **self._place,  # type: ignore[arg-type]
            split=split,
            modality=modality,
            metric=metric,
            value=value,
            n=n,
            low=interval.low if interval else None,
            high=interval.high if interval else None,
            change_low=change.low if change else None,
            change_high=change.high if change else None,
            seeds=seeds,
        )

    def status(self, status: str, detail: str) -> ResultRow:
        """The single row of a cell that diverged or failed."""
        return status_row(**self._place, status=status, detail=detail)  # type: ignore[arg-type]


@dataclass(frozen=True)
class RequestOutcome:
    """What one unlearning request left: ``ok`` with its directory, or why not."""

    status: str  # ok / diverged / failed
    out_dir: Path | None
    detail: str | None = None
    reused: bool = False  # read back from the request cache, not trained now
    seconds: float | None = None  # the request's own time (load, train, save)
    seed: int | None = None  # the training seed it was trained under (None: did not finish)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class Population:
    """The people a cell evaluates: their questions' MLLMU-Bench config, the model the
    requests start from and, when the scenario has one, its oracle (that model's recipe
    without the forget set): every state is then compared with it."""

    model: Path
    config: str
    people: list[str]
    oracle: Path | None = None

    def of_oracle(self) -> Population | None:
        """The same people and questions, on the oracle."""
        return None if self.oracle is None else Population(self.oracle, self.config, self.people)


Splits = dict[str, list[str]]
Outcomes = dict[int, RequestOutcome]  # training seed -> the request it trained
