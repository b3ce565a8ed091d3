"""The registry of metrics, in registration order (the order of their rows)."""

from __future__ import annotations

from pulse.protocol.metrics.base import FORGET_SPLITS, Metric
from pulse.registry import Registry

_METRICS: Registry[Metric] = Registry("metric")


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` (its ``name`` must be new); returns it, so a module can keep it."""
    return _METRICS.add(metric.name, metric)


def unregister_metric(name: str) -> None:
    _METRICS.remove(name)


def metrics() -> list[Metric]:
    return _METRICS.entries()


def get_metric(name: str) -> Metric | None:
    return _METRICS.get(name)


def lower_is_better(metric: str, split: str) -> bool:
    """The direction of ``metric`` on ``split``; a metric no longer registered (an older run's
    rows) counts as a knowledge metric."""
    found = _METRICS.get(metric)
    return found.lower_is_better(split) if found else split in FORGET_SPLITS
