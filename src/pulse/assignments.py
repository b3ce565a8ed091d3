"""``key=value`` assignments as ``--set`` takes them, parsed one way for the run config
(``pulse run --set train.lr=1e-4``) and the method hyper-parameters (``pulse unlearn --set
beta=0.2``): the value is read as YAML (``0.2`` a number, ``true`` a bool, ``[1, 2]`` a
list, ``null`` nothing) and kept as text when it is not YAML; the model the key belongs to
then validates it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from pulse.errors import ConfigError


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"train.lr=1e-4"`` -> ``("train.lr", "1e-4")``; ``"beta=0.2"`` -> ``("beta", 0.2)``."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected key=value")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw.strip()
    return key.strip(), value


def parse_assignments(items: Iterable[str]) -> dict[str, Any]:
    """Several assignments; a later one of the same key wins."""
    return dict(parse_assignment(text) for text in items)
