"""Where a run's models and data come from: the synthetic world (built and trained on demand,
reused when unchanged) or local checkpoints and files, checked before anything trains."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pulse.errors import ConfigError, ModelError
from pulse.protocol.config import RunConfig


@dataclass(frozen=True)
class Sources:
    base: Path | None = None
    finetuned: Path | None = None
    pebench_model: Path | None = None
    mllmu: Path | None = None
    mmbench: Path | None = None
    pebench: Path | None = None


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
    stages = train_world_models(
        world_dir, models_dir, world_train_config(spec.seed), progress=progress
    )
    if progress:
        for stage in stages:
            state = "reused" if stage.reused else f"trained in {stage.seconds:.0f}s"
            print(f"model {stage.name}: {stage.path} ({state})", flush=True)
    data = config.data
    return Sources(
        base=models_dir / "base",
        finetuned=models_dir / "finetuned",
        pebench_model=None,
        mllmu=data.mllmu or world_dir / "mllmu",
        mmbench=data.mmbench or world_dir / "mmbench" / "dev.tsv",
        pebench=data.pebench or world_dir / "pebench" / "PEBench.csv",
    )


def local_sources(config: RunConfig) -> Sources:
    m, d = config.models, config.data
    return Sources(m.base, m.finetuned, m.pebench, d.mllmu, d.mmbench, d.pebench)


def check_sources(config: RunConfig, sources: Sources) -> None:
    """Every path an enabled scenario needs exists; else one line naming the key."""
    enabled = set(config.enabled())
    needs: list[tuple[str, Path | None, str]] = []
    if enabled & {"finetuned", "sequential", "scope"}:
        needs += [
            ("models.finetuned", sources.finetuned, "dir"),
            ("data.mllmu", sources.mllmu, "dir"),
        ]
    if "pretrained" in enabled:
        needs += [("models.base", sources.base, "dir"), ("data.mllmu", sources.mllmu, "dir")]
    if enabled & {"finetuned", "sequential", "scope", "pretrained"} and config.eval.general:
        needs.append(("data.mmbench", sources.mmbench, "file"))
    if "pebench" in enabled:
        needs.append(("data.pebench", sources.pebench, "file"))
        pe = config.scenarios.pebench
        model = sources.pebench_model if pe.finetune_epochs == 0 else sources.base
        key = "models.pebench" if pe.finetune_epochs == 0 else "models.base"
        needs.append((key, model, "dir"))
    from pulse.models.loading import check_model_dir

    for key, path, kind in needs:
        if path is None:
            raise ConfigError(f"{key}: required by the enabled scenarios, not given")
        if kind == "dir" and key.startswith("models.") and path.is_dir():
            try:
                check_model_dir(path)  # weights and model type, before anything is written
            except ModelError as exc:
                raise ConfigError(f"{key}: {exc}") from None
        exists = path.is_dir() if kind == "dir" else path.is_file()
        if not exists:
            raise ConfigError(
                f"{key}: {path} is not an existing {'directory' if kind == 'dir' else 'file'}"
            )
