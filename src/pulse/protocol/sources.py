"""Where a run's models and data come from: the synthetic world (built and trained on demand,
reused when unchanged) or local checkpoints and files, checked before anything trains."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pulse.errors import ConfigError, ModelError
from pulse.protocol.config import RunConfig
from pulse.protocol.registry import Need, get_scenario

if TYPE_CHECKING:
    from pulse.world.train import WorldTrainConfig


@dataclass(frozen=True)
class Sources:
    base: Path | None = None
    finetuned: Path | None = None
    pebench_model: Path | None = None
    mllmu: Path | None = None
    mmbench: Path | None = None
    pebench: Path | None = None
    # models.oracle: the fine-tuned model's oracle, a local checkpoint trained without the
    # forget set (a scenario's own is in the config: RunConfig.local_oracle); with the world,
    # ``world_oracles`` trains it for the forget set a scenario chooses.
    oracle: Path | None = None
    world_oracles: WorldOracles | None = None


@dataclass(frozen=True)
class WorldOracles:
    """The world and its models, from which the oracles of a forget set are trained (or
    reused: :mod:`pulse.world.oracle`) with the recipe of the world's models."""

    world: Path
    models: Path
    config: WorldTrainConfig


def world_sources(config: RunConfig, run_dir: Path, progress: bool = True) -> Sources:
    """Build or reuse the world and its tiny models under ``models.world.dir`` (default the run
    directory): ``world/`` and ``models/``."""
    from pulse.world.build import build_world
    from pulse.world.train import train_world_models, world_train_config

    spec = config.models.world
    assert spec is not None
    home = Path(spec.dir) if spec.dir is not None else run_dir
    world_dir, models_dir = home / "world", home / "models"
    summary = build_world(world_dir, seed=spec.seed, size=spec.size)
    if progress:
        print(summary.render(), flush=True)
    data = config.data
    sources = Sources(
        base=models_dir / "base",
        finetuned=models_dir / "finetuned",
        pebench_model=None,
        mllmu=data.mllmu or world_dir / "mllmu",
        mmbench=data.mmbench or world_dir / "mmbench" / "dev.tsv",
        pebench=data.pebench or world_dir / "pebench" / "PEBench.csv",
        world_oracles=WorldOracles(world_dir, models_dir, world_train_config(spec.seed)),
    )
    check_data(config, sources)  # what the world's data says, before minutes of training
    stages = train_world_models(
        world_dir, models_dir, world_train_config(spec.seed), progress=progress
    )
    if progress:
        for stage in stages:
            state = "reused" if stage.reused else f"trained in {stage.seconds:.0f}s"
            print(f"model {stage.name}: {stage.path} ({state})", flush=True)
    return sources


def local_sources(config: RunConfig) -> Sources:
    m, d = config.models, config.data
    return Sources(m.base, m.finetuned, m.pebench, d.mllmu, d.mmbench, d.pebench, m.oracle)


def mllmu_needs(
    config: RunConfig, sources: Sources, model_key: str, scenario: str | None = None
) -> list[Need]:
    """What a scenario on MLLMU-Bench people needs: its model, the data, its local oracle when
    the config names one (under the key that names it) and, when general capability is
    evaluated, the MMBench file."""
    model = sources.finetuned if model_key == "models.finetuned" else sources.base
    needs: list[Need] = [(model_key, model, "dir"), ("data.mllmu", sources.mllmu, "dir")]
    oracle = config.local_oracle(scenario) if scenario is not None else None
    if oracle is None and model_key == "models.finetuned" and sources.oracle is not None:
        oracle = ("models.oracle", sources.oracle)
    if oracle is not None:
        needs.append((oracle[0], oracle[1], "dir"))
    if config.eval.general:
        needs.append(("data.mmbench", sources.mmbench, "file"))
    return needs


def check_sources(config: RunConfig, sources: Sources, *, data: bool = True) -> None:
    """Every path an enabled scenario needs exists; else one line naming the key. Then, with
    ``data``, what the data says (:func:`check_data`; the world's sources have had it)."""
    from pulse.models.loading import check_model_dir

    needs: dict[str, Need] = {}
    for name in config.enabled():
        scenario = get_scenario(name)
        for need in scenario.needs(config, sources) if scenario else []:
            needs.setdefault(need[0], need)
    for key, path, kind in needs.values():
        if path is None:
            raise ConfigError(f"{key}: required by the enabled scenarios, not given")
        if kind == "dir" and not key.startswith("data.") and path.is_dir():  # a model
            try:
                check_model_dir(path)  # weights and model type, before anything is written
            except ModelError as exc:
                raise ConfigError(f"{key}: {exc}") from None
        exists = path.is_dir() if kind == "dir" else path.is_file()
        if not exists:
            raise ConfigError(
                f"{key}: {path} is not an existing {'directory' if kind == 'dir' else 'file'}"
            )
    if data:  # the paths exist: what the data says, before any split
        check_data(config, sources)


def check_data(config: RunConfig, sources: Sources) -> None:
    """Each enabled scenario's checks against the data (:meth:`Scenario.check_data`)."""
    for name in config.enabled():
        config.scenarios[name].check_data(config, sources)
