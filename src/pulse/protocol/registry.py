"""The registry of scenarios: each scenario module registers what it is, in one place.

A :class:`ScenarioType` names the scenario's config section (its pydantic model), how it runs
(a function of the :class:`~pulse.protocol.engine.Engine` and its section's name), its table
layout, its reading sentences and its figures. The config, the engine, the source checks and
the report all look scenarios up here; nothing else lists them. The built-in scenarios
(:mod:`pulse.protocol.scenarios`) are loaded the first time the registry is read, the way a
plugin is discovered; a new scenario is one module that calls :func:`register_scenario`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pulse.registry import Registry

if TYPE_CHECKING:
    from pulse.protocol.config import RunConfig, Scenario
    from pulse.protocol.engine import Engine
    from pulse.protocol.sources import Sources
    from pulse.report.figures import FigureFile
    from pulse.report.tables import Layout, Table

BUILTINS = "pulse.protocol.scenarios"

# (config key, path, "dir" or "file"): what an enabled scenario needs before anything runs.
Need = tuple[str, "Path | None", str]


def _no_needs(config: RunConfig, sources: Sources) -> list[Need]:
    return []


@dataclass(frozen=True)
class ScenarioType:
    name: str  # its config section under ``scenarios`` and the ``kind`` of its rows
    config: type[Scenario]
    run: Callable[[Engine, str], None]
    layout: Layout | None = None  # None: forget / retain / general columns
    # Sentences about its own table (None: which method forgets most, at what cost).
    reading: Callable[[Table], list[str]] | None = None
    # Sentences comparing its tables with other scenarios' (said after every table's own).
    reading_across: Callable[[Sequence[Table]], list[str]] | None = None
    # Figures of its own beside the common ones: (tables, colour of each method) -> figures.
    figures: Callable[[Sequence[Table], dict[str, str]], list[FigureFile]] | None = None
    needs: Callable[[RunConfig, Sources], list[Need]] = _no_needs
    # Why a table of this scenario can be without an oracle row: the reading says it then, in
    # place of the rows versus the oracle (None: it says nothing).
    no_oracle: str | None = None


_SCENARIOS: Registry[ScenarioType] = Registry("scenario", builtins=BUILTINS)


def register_scenario(scenario: ScenarioType) -> ScenarioType:
    """Add a scenario type (its name must be new); it runs after those registered before."""
    return _SCENARIOS.add(scenario.name, scenario)


def unregister_scenario(name: str) -> None:
    _SCENARIOS.remove(name)


def scenario_types() -> list[ScenarioType]:
    """Every registered scenario, built-ins first, in the order they run."""
    return _SCENARIOS.entries()


def get_scenario(name: str) -> ScenarioType | None:
    return _SCENARIOS.get(name)


def scenario_names() -> list[str]:
    return _SCENARIOS.names()
