"""`pulse run`: every enabled scenario in registry order, resumable stage by stage."""

from __future__ import annotations

import time
from pathlib import Path

from pulse.protocol.config import RunConfig
from pulse.protocol.engine import Engine, Interrupt
from pulse.protocol.registry import get_scenario
from pulse.protocol.sources import check_sources, local_sources, world_sources
from pulse.protocol.store import RunStore

__all__ = ["Interrupt", "run_protocol", "run_scenarios"]


def run_scenarios(engine: Engine) -> None:
    """Every enabled scenario of the engine's config, then the run's results file."""
    started = time.perf_counter()
    for name in engine.config.enabled():
        scenario = get_scenario(name)
        assert scenario is not None  # the config only holds registered scenarios
        scenario.run(engine, name)
    engine.store.rebuild_results()
    engine.store.finish(time.perf_counter() - started)


def run_protocol(
    config: RunConfig,
    run_dir: str | Path,
    *,
    new_dir: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> RunStore:
    """Open (or resume) the run directory, prepare the models and run every enabled scenario.
    Local checkpoints and files are checked before the run directory is created."""
    if config.models.world is None:
        sources = local_sources(config)
        check_sources(config, sources)
        store = RunStore.open(run_dir, config, new_dir=new_dir)
    else:
        store = RunStore.open(run_dir, config, new_dir=new_dir)
        sources = world_sources(config, store.root, progress=progress)
        check_sources(config, sources)
    run_scenarios(Engine(config, store, sources, progress=progress, stop_after=stop_after))
    return store
