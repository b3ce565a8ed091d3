"""Evaluation along a request: the model scored at chosen optimizer steps while it trains.

``train.eval_every`` ("N steps" or "F epoch") names the steps (:func:`pulse.models.settings.
eval_steps`); at each, :class:`EvalPoints` hands the model in training to the caller's
``evaluate(step, model, processor)`` (the protocol scores the forget and retain people with the
run's scorer and keeps each point as a state of the request, :mod:`pulse.protocol.trajectory`)
and training goes on from exactly where it was: the model is put back in training mode and
every random generator restored, so the request ends in the weights it reaches without points.
``evaluate`` returns a reason to stop (early stopping, ``train.stop_at``) or ``None``.

Under a data-parallel launch (``torchrun`` / ``accelerate launch``) every process reaches a
point at the same step with the same weights and calls ``evaluate`` together: the protocol's
evaluation is sharded over them and gathered (:mod:`pulse.models.collective`), rank 0 alone
writes it, and every process gets the same answer, so they agree on stopping early.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import TrainerCallback

from pulse.models.settings import eval_steps

# (step, model in training, processor) -> why training should stop there, or None.
Evaluate = Callable[[int, nn.Module, Any], "str | None"]


@dataclass(frozen=True)
class PointPlan:
    """When to evaluate (``eval_every``) and what to do at each point."""

    every: str
    evaluate: Evaluate


class EvalPoints(TrainerCallback):
    """Calls the plan's ``evaluate`` at its steps; records where (and why) it stopped."""

    def __init__(self, plan: PointPlan, processor: Any) -> None:
        self.plan, self.processor = plan, processor
        self.steps: list[int] = []
        self.stopped: dict[str, Any] | None = None

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        per_epoch = len(train_dataloader) // args.gradient_accumulation_steps or 1
        self.steps = eval_steps(self.plan.every, per_epoch, state.max_steps)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        step = state.global_step
        if step not in self.steps:
            return
        # On a CPU the adapter is merged for the evaluation (its forward skips the LoRA
        # layers' extra work, about half the time on the tiny model) and the weights put back
        # bit for bit after; on a GPU its extra work is small and a copy of the weights is not.
        merged = next(model.parameters()).device.type == "cpu"
        reason = evaluate_in_place(
            model, lambda: self.plan.evaluate(step, model, self.processor), merged=merged
        )
        if reason:
            self.stopped = {"step": step, "reason": reason}
            control.should_training_stop = True


def evaluate_in_place(model: nn.Module, evaluate: Callable[[], Any], merged: bool = False) -> Any:
    """``evaluate()`` on ``model`` in eval mode without gradients, then the model back in its
    mode and the random generators (Python, NumPy, torch, CUDA) as they were: training goes
    on as if nothing had run. ``merged``: its LoRA adapters merged into the weights while it
    runs, the weights restored exactly after (a copy of the adapted weights is kept)."""
    if merged:
        with _merged(model):
            return evaluate_in_place(model, evaluate)
    states = (
        random.getstate(),
        np.random.get_state(),
        torch.get_rng_state(),
        torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return evaluate()
    finally:
        model.train(was_training)
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if states[3] is not None:
            torch.cuda.set_rng_state_all(states[3])


@contextmanager
def _merged(model: nn.Module) -> Iterator[None]:
    """Every LoRA layer of ``model`` merged into its base weights, and each base weight (and
    bias) restored from a copy afterwards: bit for bit, where unmerging would subtract the
    same delta with rounding."""
    from peft.tuners.lora import LoraLayer

    layers = [m for m in model.modules() if isinstance(m, LoraLayer) and not m.merged]
    saved = []
    for layer in layers:
        base = layer.get_base_layer()
        bias = getattr(base, "bias", None)
        saved.append((base, base.weight.data.clone(), None if bias is None else bias.data.clone()))
    try:
        with torch.no_grad():
            for layer in layers:
                layer.merge()
        yield
    finally:
        with torch.no_grad():
            for (base, weight, bias), layer in zip(saved, layers, strict=True):
                base.weight.data.copy_(weight)
                if bias is not None:
                    base.bias.data.copy_(bias)
                layer.merged_adapters.clear()
