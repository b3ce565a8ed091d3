"""The registry of metrics, in registration order (the order of their rows)."""

from __future__ import annotations

from pulse.protocol.metrics.base import FORGET_SPLITS, Metric

_METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` (its ``name`` must be new); returns it, so a module can keep it."""
    if metric.name in _METRICS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    _METRICS[metric.name] = metric
    return metric


def unregister_metric(name: str) -> None:
    _METRICS.pop(name, None)


def metrics() -> list[Metric]:
    return list(_METRICS.values())


def get_metric(name: str) -> Metric | None:
    return _METRICS.get(name)


def lower_is_better(metric: str, split: str) -> bool:
    """The direction of ``metric`` on ``split``; a metric no longer registered (an older run's
    rows) counts as a knowledge metric."""
    found = _METRICS.get(metric)
    return found.lower_is_better(split) if found else split in FORGET_SPLITS
