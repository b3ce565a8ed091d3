"""Supervised training (pre-training from scratch and LoRA fine-tuning) on the HF Trainer.

The Trainer brings mixed precision, gradient accumulation, multi-GPU (``accelerate launch``) and
logging; we bring the examples and the collator with answer-only labels.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments

from pulse.models.chat import ChatCollator


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
    progress: bool = True


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


class _LossLog(TrainerCallback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))


def train_supervised(
    model: nn.Module,
    processor: Any,
    examples: Sequence[Any],
    cfg: TrainConfig,
    output_dir: str | None = None,
) -> TrainStats:
    """Train ``model`` in place on question / answer ``examples`` (loss on answer tokens only).

    Examples are anything :class:`~pulse.models.chat.ChatCollator` accepts. Data order and
    initialisation of new weights follow ``cfg.seed``.
    """
    log = _LossLog()
    with tempfile.TemporaryDirectory(prefix="pulse-train-") as tmp:
        args = TrainingArguments(
            output_dir=output_dir or tmp,
            num_train_epochs=cfg.epochs,
            max_steps=cfg.max_steps,
            per_device_train_batch_size=cfg.batch_size,
            gradient_accumulation_steps=cfg.grad_accum,
            learning_rate=cfg.learning_rate,
            weight_decay=cfg.weight_decay,
            warmup_steps=_warmup_steps(len(examples), cfg),
            lr_scheduler_type=cfg.scheduler,
            max_grad_norm=cfg.max_grad_norm,
            seed=cfg.seed,
            data_seed=cfg.seed,
            bf16=cfg.bf16,
            logging_steps=cfg.logging_steps,
            save_strategy="no",
            report_to=list(cfg.report_to) or "none",
            remove_unused_columns=False,
            dataloader_num_workers=0,
            disable_tqdm=not cfg.progress,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=list(examples),
            data_collator=ChatCollator(processor),
            callbacks=[log],
        )
        start = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - start
    model.eval()
    return TrainStats(
        steps=result.global_step,
        examples=len(examples),
        seconds=seconds,
        first_loss=log.losses[0] if log.losses else None,
        last_loss=log.losses[-1] if log.losses else None,
        losses=log.losses,
    )


def _warmup_steps(n_examples: int, cfg: TrainConfig) -> int:
    per_epoch = math.ceil(n_examples / (cfg.batch_size * cfg.grad_accum))
    total = cfg.max_steps if cfg.max_steps > 0 else math.ceil(per_epoch * cfg.epochs)
    return int(total * cfg.warmup_ratio)
