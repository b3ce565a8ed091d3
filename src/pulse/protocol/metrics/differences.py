"""Paired comparisons of two model states on the same people and questions, for every metric
marked ``compared``: rows whose ``metric`` names the comparison, whose value is the first
state's value minus the second's and whose ``low`` / ``high`` are the paired 95 % interval of
that difference (the metric's :meth:`~pulse.protocol.metrics.base.Metric.paired`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Comparison:
    name: str  # the rows' ``metric`` field
    label: str
    legend: str


GAP = Comparison(
    "gap",
    "sequential against one batch",
    "the last sequential request's value minus the one-batch request's (in the last request's "
    "cell)",
)
CONTRAST = Comparison(
    "contrast",
    "contrast",
    "a cell's value minus the method (or scope) named in ``versus`` (in the first one's cell)",
)


def comparisons() -> tuple[Comparison, ...]:
    return (GAP, CONTRAST)
