"""What the training-speed benchmarks share: the tiny LLaVA of ``pulse world train`` built on a
world's corpus, a short pre-training config, and variants timed in interleaved rounds (each
round runs every variant once, so load from other processes hits all of them alike)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pulse.methods.supervised import TrainConfig, TrainStats
from pulse.models.chat import ChatExample
from pulse.models.tiny import build_tiny_lmm
from pulse.world.build import build_world
from pulse.world.train import (
    WorldTrainConfig,
    _tokenizer_texts,
    corpus_examples,
    tokenizer_examples,
)


@dataclass
class TinySetup:
    world: Path
    corpus: list[ChatExample]
    tuning: list[ChatExample]  # what ``tuning`` gave (empty without it)
    model: Any
    processor: Any
    config: TrainConfig  # the world's pre-training settings for a short timed run


def tiny_setup(
    world: Path | None,
    tmp: str,
    steps: int,
    batch_size: int,
    tuning: Callable[[Path], list[ChatExample]] | None = None,
) -> TinySetup:
    """``world`` (or a small one built under ``tmp``) and a randomly initialised tiny model
    whose tokenizer also saw ``tuning(world)`` when given."""
    world = world or build_world(Path(tmp) / "world", seed=0, size="small").path
    corpus = corpus_examples(world)
    extra = tuning(world) if tuning else []
    wcfg = WorldTrainConfig()
    model, processor = build_tiny_lmm(_tokenizer_texts(corpus, extra), wcfg.model, seed=0)
    config = replace(
        wcfg.pretrain, max_steps=steps, batch_size=batch_size, logging_steps=steps, progress=False
    )
    return TinySetup(world, corpus, extra, model, processor, config)


def untrained_world_model(world: Path) -> tuple[Any, Any]:
    """A randomly initialised tiny model (eval mode) with the tokenizer ``pulse world train``
    builds for ``world``: what the evaluation-cost benchmarks score."""
    cfg = WorldTrainConfig()
    texts = _tokenizer_texts(corpus_examples(world), tokenizer_examples(world, cfg))
    model, processor = build_tiny_lmm(texts, cfg.model, seed=0)
    return model.eval(), processor


def interleaved(
    names: Sequence[str], rounds: int, run: Callable[[str], tuple[TrainStats, str]]
) -> dict[str, list[TrainStats]]:
    """``run(name)`` for every variant in every round; prints each run's seconds per step and
    the note ``run`` returns beside its stats."""
    width = max(len(name) for name in names)
    results: dict[str, list[TrainStats]] = {name: [] for name in names}
    for round_ in range(rounds):
        for name in names:
            stats, note = run(name)
            results[name].append(stats)
            print(
                f"  round {round_ + 1} {name:<{width}} {stats.seconds_per_step:.3f} s/step "
                f"({note})",
                flush=True,
            )
    return results


def print_speed_table(results: dict[str, list[TrainStats]], reference: str) -> None:
    """Per variant: seconds per step (median over rounds), the speed-up over ``reference`` and
    the last run's last logged loss."""
    median = {
        name: statistics.median(s.seconds_per_step for s in runs) for name, runs in results.items()
    }
    width = max(len("variant"), *(len(name) for name in results))
    print(f"\n{'variant':<{width}} {'s/step':>8} {'speed-up':>9} {'last loss':>10}")
    for name, runs in results.items():
        print(
            f"{name:<{width}} {median[name]:>8.3f} {median[reference] / median[name]:>8.2f}x "
            f"{runs[-1].last_loss:>10.4f}"
        )
