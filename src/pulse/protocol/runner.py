"""`pulse run`: every enabled scenario in registry order, resumable stage by stage."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from pulse.errors import PulseError
from pulse.models.collective import from_main, is_main, solo
from pulse.models.device import resolve_device
from pulse.protocol.config import RunConfig
from pulse.protocol.engine import Engine, Interrupt
from pulse.protocol.precision import for_device
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
    device: torch.device | None = None,
) -> RunStore:
    """Open (or resume) the run directory, prepare the models and run every enabled scenario.
    Local checkpoints and files are checked before the run directory is created.

    In a launched run of several processes (``torchrun`` / ``accelerate launch``, the process
    group joined) every process calls this: rank 0 alone writes the run directory, the world
    is prepared by rank 0 in one process of its own, every request trains over all the
    processes and every evaluation is split over them (:mod:`pulse.models.collective`).

    The training precision the config leaves open is decided for ``device`` first
    (:mod:`pulse.protocol.precision`): bf16 on a GPU that has it, float32 on a CPU."""
    device = device or resolve_device()
    config = for_device(config, device)
    progress = progress and is_main()
    if config.models.world is None:
        sources = local_sources(config)
        from_main(lambda: check_sources(config, sources))
        store = RunStore.open(run_dir, config, new_dir=new_dir)
    else:
        store = RunStore.open(run_dir, config, new_dir=new_dir)
        try:
            sources = solo(world_sources, config, store.root, progress=progress)
            from_main(lambda: check_sources(config, sources, data=False))
        except PulseError:
            from_main(store.discard_if_new)
            raise
    engine = Engine(config, store, sources, progress=progress, stop_after=stop_after, device=device)
    run_scenarios(engine)
    return store
