"""The metrics the protocol measures, each declared once (see :mod:`.base`) and registered
here in the order their rows are written. A new metric is one module that subclasses
:class:`Metric` and calls :func:`register_metric`; :mod:`.differences` declares the paired
comparisons (``gap``, ``contrast``) built from the metrics marked ``compared``."""

from __future__ import annotations

# The built-in metrics register themselves on import, their rows in this order within a
# group (forget_quality imports truth_ratio first); a metric's groups keep their order.
from pulse.protocol.metrics import (  # noqa: F401
    accuracy,
    chance,
    forget_quality,
    general,
    mia_auc,
    oracle_distance,
    pebench_score,
    privleak,
    truth_ratio,
)
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
