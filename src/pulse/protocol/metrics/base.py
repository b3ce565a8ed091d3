"""What a metric is: one declaration of a number the protocol measures.

A metric reads one part of a model state's evaluation (the MCQ records, the general-capability
verdicts, the PEBench records), says which groups it is measured on (a split and a modality),
how the per-item records of a group aggregate into a value, what its 95 % interval resamples,
how its change against ``before`` and its paired differences (the sequential gap, method
contrasts) are formed, and how the report shows it. The protocol's rows, the tables, the CSV /
LaTeX / HTML exports, the reading and the figures all take metrics from these declarations.

A metric works on *samples*: what :meth:`Metric.select` returns for one state and one group
(typically a list of :class:`~pulse.eval.records.ItemRecord`); several samples are the same
group measured under several training seeds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pulse.eval.intervals import Interval
from pulse.protocol.measurement import Measurement

MODALITIES = ("multimodal", "text")
# Splits whose people are to be forgotten: a knowledge metric is better lower on them.
# Their generalisation twins (the same people's Test_Set questions, pulse.protocol.generalisation)
# likewise.
FORGET_SPLITS = frozenset(
    {"forget", "current", "forgotten", "forget_test", "current_test", "forgotten_test"}
    # the robustness scenario's relearning attack: both halves of the forget set
    | {"relearned", "held_back"}
)

Splits = Mapping[str, Sequence[str]]
Sample = Any


@dataclass(frozen=True)
class Group:
    """Where a metric is measured: a split (its people, when it has any) and a modality."""

    split: str
    modality: str
    people: tuple[str, ...] = ()


@dataclass(frozen=True)
class Display:
    """A column a metric adds to every table that measured it (the built-in metrics are placed
    by each scenario's layout instead): ``label`` under the metric's group header."""

    label: str
    split: str
    modality: str | None = None  # None: any modality ("all" preferred)


# A sample of a metric measured against the oracle: the state's records and the oracle's.
OraclePair = tuple[list[Any], list[Any]]


def modality_displays(split: str, prefix: str = "") -> tuple[Display, Display]:
    """The multimodal and text-only columns of ``split``, labelled ``<prefix>multimodal``."""
    return (
        Display(f"{prefix}multimodal", split, "multimodal"),
        Display(f"{prefix}text-only", split, "text"),
    )


class Metric:
    """Base declaration; a metric module subclasses it and registers one instance.

    Class attributes declare the metric; methods compute it. ``None`` from ``interval`` /
    ``change`` / ``paired`` means "no interval" (too few units, older evaluations)."""

    name: ClassVar[str]  # the ``metric`` field of its result rows
    label: ClassVar[str]  # how tables and figures name it
    reads: ClassVar[str]  # the part of an evaluation it needs (a Measurement attribute)
    resamples: ClassVar[str] = ""  # what its interval draws: people, questions, images
    higher_is_better: ClassVar[bool] = True
    # A knowledge metric: on forget-type splits (FORGET_SPLITS) lower is better.
    knowledge: ClassVar[bool] = False
    # Whether it takes part in paired differences (the sequential gap, method contrasts).
    compared: ClassVar[bool] = False
    legend: ClassVar[str] = ""  # one sentence for the report's legend (empty: none)
    columns: ClassVar[tuple[Display, ...]] = ()
    # Compares a state with the oracle (a model trained without the forget set): its rows exist
    # only where the scenario has an oracle, and its samples pair the state's and the oracle's
    # (:meth:`against`).
    versus_oracle: ClassVar[bool] = False
    # Whether its columns mark a "best" value (not for a value whose ideal is in the middle).
    ranked: ClassVar[bool] = True

    def lower_is_better(self, split: str) -> bool:
        return (not self.higher_is_better) ^ (self.knowledge and split in FORGET_SPLITS)

    def applies(self, measurement: Measurement) -> bool:
        return getattr(measurement, self.reads, None) is not None

    def groups(self, splits: Splits) -> Iterable[Group]:
        raise NotImplementedError

    def select(self, measurement: Measurement, group: Group) -> Sample | None:
        """The per-item records of ``group`` in ``measurement`` (falsy: not measured)."""
        raise NotImplementedError

    def against(self, sample: Sample, oracle: Sample) -> Sample:
        """The sample of a metric versus the oracle: the state's and the oracle's, paired
        (None: no value against this oracle, so no row)."""
        return (sample, oracle)

    def value(self, samples: Sequence[Sample]) -> float:
        """The value of one sample; several (training seeds) give the mean of theirs."""
        raise NotImplementedError

    def count(self, samples: Sequence[Sample]) -> int:
        """The row's ``n``: how many items one sample holds."""
        return len(samples[0])

    def seeds(self, samples: Sequence[Sample]) -> int:
        return len(samples)

    def interval(self, samples: Sequence[Sample]) -> Interval | None:
        return None

    def paired(self, later: Sequence[Sample], earlier: Sequence[Sample]) -> Interval | None:
        """The interval of value(later) − value(earlier) on the same items, ``later[i]`` paired
        with ``earlier[i]`` (or with ``earlier[0]`` for all when it is one state)."""
        return None

    def change(self, samples: Sequence[Sample], before: Sample) -> Interval | None:
        """The paired interval of the change against the before state (default: ``paired``)."""
        return self.paired(samples, [before])

    def difference(self, later: Sequence[Sample], earlier: Sequence[Sample]) -> float:
        """The mean over paired seeds of their values' difference."""
        return mean(self.value([a]) - self.value([b]) for a, b in zip(later, earlier, strict=True))


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values)


def split_groups(splits: Splits) -> Iterator[Group]:
    """Every non-empty split in each modality, pooled ("all") last."""
    for split, people in splits.items():
        if people:
            for modality in (*MODALITIES, "all"):
                yield Group(split, modality, tuple(people))
