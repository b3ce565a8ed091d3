"""The metrics the protocol measures, each declared once (see :mod:`.base`) and registered
here in the order their rows are written. A new metric is one module that subclasses
:class:`Metric` and calls :func:`register_metric`; :mod:`.differences` declares the paired
comparisons (``gap``, ``contrast``) built from the metrics marked ``compared``."""

from __future__ import annotations

# The built-in metrics register themselves on import, in row order.
from pulse.protocol.metrics import accuracy, chance, general, pebench_score  # noqa: F401
from pulse.protocol.metrics.base import (
    FORGET_SPLITS,
    MODALITIES,
    Display,
    Group,
    Metric,
    Splits,
    split_groups,
)
from pulse.protocol.metrics.differences import CONTRAST, GAP, Comparison, comparisons
from pulse.protocol.metrics.registry import (
    get_metric,
    lower_is_better,
    metrics,
    register_metric,
    unregister_metric,
)

__all__ = [
    "CONTRAST",
    "FORGET_SPLITS",
    "GAP",
    "MODALITIES",
    "Comparison",
    "Display",
    "Group",
    "Metric",
    "Splits",
    "comparisons",
    "get_metric",
    "lower_is_better",
    "metrics",
    "register_metric",
    "split_groups",
    "unregister_metric",
]
