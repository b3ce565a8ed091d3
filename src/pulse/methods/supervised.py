"""Supervised training (pre-training from scratch and LoRA fine-tuning) on the shared loop.

Fine-tuning is the :mod:`~pulse.methods.sft` loss (mean NLL over answer tokens) run by the same
Trainer-based loop as every unlearning method: mixed precision, gradient accumulation,
multi-GPU and logging come from there. It lives here, beside the loop, so that the model layer
below never imports the methods.

``TrainConfig.processes > 1`` trains data parallel in that many local CPU processes started by
the call (gloo, one process group; :mod:`pulse.models.parallel`): ``batch_size`` stays the
batch of one optimizer step, split evenly over the processes, and rank 0's trained weights are
copied back into the caller's model. Launched under ``torchrun`` instead, each rank trains in
its own process (no second level of workers); ``processes`` must then equal the world size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from pulse.errors import ConfigError, ModelError, SettingError
from pulse.methods.batches import UnlearnData
from pulse.methods.sft import sft
from pulse.methods.trainer import LoopConfig, train_method
from pulse.models.encoded import DEFAULT_MAX_BYTES
from pulse.models.parallel import in_distributed_run, run_data_parallel, split_batch, world_size


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 1.0
    max_steps: int = -1  # overrides epochs when positive
    batch_size: int = 32
    grad_accum: int = 1
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    scheduler: str = "cosine"
    max_grad_norm: float = 1.0
    seed: int = 0
    bf16: bool = False
    logging_steps: int = 25
    report_to: tuple[str, ...] = ()  # e.g. ("tensorboard",); nothing by default
    loss_reduction: str = "token"  # or "sequence": every example weighs the same
    group_by_length: bool = False  # batches of similar length: less padding, faster steps
    # Pack each batch's examples into rows of about this many tokens: the same loss without
    # compute on padding (0: padded rows; LLaVA-1.5 layouts, see pulse.models.packing).
    pack_tokens: int = 0
    # Examples' encodings kept after their first batch, up to this many bytes (0: none; see
    # pulse.models.encoded): later epochs skip the tokenizer and the image processor.
    encoding_cache_bytes: int = DEFAULT_MAX_BYTES
    progress: bool = True
    # Data-parallel CPU processes (gloo); batch_size is split over them. The same config and
    # number of processes give the same weights; a different number, nearly the same (the
    # token mean spans every process, pulse.methods.sft: pulse finetune's LoRA training
    # matches one process within float tolerance, tests/methods/test_finetune_multiprocess.py).
    processes: int = 1

    def __post_init__(self) -> None:
        def refuse(name: str, expected: str) -> None:
            raise SettingError("train", name, f"expected {expected}, got {getattr(self, name)!r}")

        if self.max_steps != -1 and self.max_steps < 1:
            refuse("max_steps", "-1 (train by epochs) or at least 1")
        used = ("epochs", "learning_rate") if self.max_steps == -1 else ("learning_rate",)
        for name in used:  # max_steps decides the length when set
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):  # a negative lr would train by ascent
                refuse(name, "a finite number above 0")
        for name in ("batch_size", "grad_accum", "processes"):
            if getattr(self, name) < 1:
                refuse(name, "at least 1")
        for name in ("pack_tokens", "encoding_cache_bytes"):
            if getattr(self, name) < 0:
                refuse(name, "0 or more")
        split_batch(self.batch_size, self.processes)


@dataclass
class TrainStats:
    steps: int
    examples: int
    seconds: float
    first_loss: float | None
    last_loss: float | None
    losses: list[float] = field(default_factory=list)

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / max(self.steps, 1)


def train_supervised(
    model: nn.Module,
    processor: Any,
    examples: Sequence[Any],
    cfg: TrainConfig,
    output_dir: str | None = None,
) -> TrainStats:
    """Train ``model`` in place on question / answer ``examples`` (loss on answer tokens only).

    Examples are anything :class:`~pulse.models.chat.ChatCollator` accepts. Data order and
    initialisation of new weights follow ``cfg.seed``. With ``cfg.processes > 1`` (and not
    already inside a distributed run) the training runs in that many worker processes and the
    trained weights are loaded back into ``model``.
    """
    if cfg.processes > 1 and not in_distributed_run():
        args = (processor, list(examples), cfg, output_dir)
        stats = run_data_parallel(_train_worker, model, args, cfg.processes)
        model.zero_grad(set_to_none=True)
        model.eval()
        return TrainStats(**stats)
    return _train(model, processor, examples, cfg, output_dir)


def _train_worker(model, processor, examples, cfg, output_dir) -> dict[str, Any]:
    """One rank of a data-parallel training (run in a worker process)."""
    return asdict(_train(model, processor, examples, cfg, output_dir))


def _train(
    model: nn.Module,
    processor: Any,
    examples: Sequence[Any],
    cfg: TrainConfig,
    output_dir: str | None,
) -> TrainStats:
    """Train in this process (one rank of a distributed run, or alone)."""
    world = world_size()
    trainer_args: dict[str, Any] = {}
    if cfg.processes > 1 and world != cfg.processes:
        raise ConfigError(
            f"train 'processes' is {cfg.processes} inside a distributed run of {world} "
            "processes: set it to the launcher's number of processes, or to 1"
        )
    if world > 1:
        # Pre-training from scratch leaves parameters without a gradient in some steps (the
        # vision tower on text-only batches, its unused last norm): DDP must look for them.
        trainer_args["ddp_find_unused_parameters"] = True

    loop = LoopConfig(
        epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        batch_size=cfg.batch_size,  # the step's: the loop splits it over the processes
        grad_accum=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=_warmup_steps(len(examples), cfg),
        scheduler=cfg.scheduler,
        max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed,
        bf16=cfg.bf16,
        logging_steps=cfg.logging_steps,
        report_to=cfg.report_to,
        loss_bound=None,  # a supervised loss is positive; only NaN / inf stop it
        progress=cfg.progress,
        progress_desc="train",
        group_by_length=cfg.group_by_length,
        pack_tokens=cfg.pack_tokens,
        encoding_cache_bytes=cfg.encoding_cache_bytes,
        trainer_args=trainer_args,
    )
    result = train_method(
        model,
        processor,
        sft(cfg.loss_reduction),
        UnlearnData(forget=list(examples)),
        loop,
        output_dir=output_dir,
    )
    if not result.ok:
        raise ModelError(f"training diverged: {result.diverged}")
    losses = [entry["loss"] for entry in result.history]
    return TrainStats(
        steps=result.steps,
        examples=len(examples),
        seconds=result.seconds,
        first_loss=losses[0] if losses else None,
        last_loss=losses[-1] if losses else None,
        losses=losses,
    )


def _warmup_steps(n_examples: int, cfg: TrainConfig) -> int:
    per_epoch = math.ceil(n_examples / (cfg.batch_size * cfg.grad_accum))
    total = cfg.max_steps if cfg.max_steps > 0 else math.ceil(per_epoch * cfg.epochs)
    return int(total * cfg.warmup_ratio)
