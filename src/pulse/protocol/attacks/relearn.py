"""Relearning attack: a few LoRA fine-tuning steps on what was forgotten, then ask again.

Relearning studies recover unlearned knowledge with a few dozen fine-tuning steps on related
data. Here a seeded half of the forget people (``relearned``) has its training pairs (the
pairs an unlearning request trains on: ``metadata`` of ft_Data, at most ``pairs_per_id`` each)
fine-tuned on for ``steps`` optimizer steps at ``lr`` with a fresh LoRA adapter (the run's
``train.scope``) on the state, adapter merged; then both halves are asked their benchmark
questions, whose wordings no training pair holds: the relearned half, and the ``held_back``
half that was never shown again (does relearning some people bring back the others?). The
oracle gets the same attack: what it learns in the same steps is what a model that never knew
the people picks up; recovery beyond it is knowledge that was hidden, not removed.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from pulse.data.schema import TrainPair
from pulse.errors import ModelError
from pulse.models.settings import TrainSettings
from pulse.protocol.config import Section


class RelearnSettings(Section):
    steps: int = Field(10, ge=1)  # optimizer steps
    lr: float = Field(1e-3, gt=0, le=1)
    batch_size: int = Field(8, ge=1)
    pairs_per_id: int | None = Field(16, ge=1)  # training pairs per relearned person

    def train_settings(self, train: TrainSettings) -> TrainSettings:
        """``train`` (the attacked scenario's settings: its scope, packing, precision) with
        the attack's steps, learning rate, batch size and pairs per person."""
        return train.model_copy(
            update={
                "lr": self.lr,
                "max_steps": self.steps,
                "batch_size": self.batch_size,
                "pairs_per_id": self.pairs_per_id,
            }
        )

    def pairs(self, mllmu: Path, people: Sequence[str], seed: int) -> list[TrainPair]:
        """The training pairs of ``people`` the attack fine-tunes on (at most
        ``pairs_per_id`` each, a seeded sample)."""
        from pulse.methods.request import sample_per_entity, train_pairs

        pairs = train_pairs(mllmu, list(people))
        if self.pairs_per_id is not None:
            pairs = sample_per_entity(pairs, self.pairs_per_id, seed)
        return pairs


def halves(forget: Sequence[str], seed: int) -> tuple[list[str], list[str]]:
    """The relearned and the held-back people: a seeded half of ``forget`` (at least one) and
    the rest, each sorted."""
    order = sorted(forget)
    random.Random(f"relearn:{seed}").shuffle(order)
    n = max(1, len(order) // 2)
    return sorted(order[:n]), sorted(order[n:])


def relearned(
    load: Callable[[], tuple[Any, Any]],
    pairs: Sequence[TrainPair],
    train: TrainSettings,
    seed: int,
) -> tuple[Any, Any]:
    """The state ``load()`` returns, fine-tuned with a fresh LoRA adapter on ``pairs`` as
    ``train`` says (its ``max_steps`` steps at its ``lr``), in eval mode."""
    from transformers import set_seed

    from pulse.methods.batches import UnlearnData
    from pulse.methods.sft import SFT
    from pulse.methods.trainer import LoopConfig, train_method
    from pulse.models.adapters import apply_scope, base_model
    from pulse.models.packing import packable

    if not pairs:
        raise ModelError("relearn: the relearned people have no training pairs")
    model, processor = load()
    set_seed(seed)
    model = apply_scope(
        model, train.scope.update_scope(), gradient_checkpointing=train.gradient_checkpointing
    )
    loop = LoopConfig.from_settings(train, seed=seed, progress=False, report_to=("none",))
    if not packable(base_model(model)):
        loop = dataclasses.replace(loop, pack_tokens=0)
    result = train_method(model, processor, SFT, UnlearnData(list(pairs), [], seed=seed), loop)
    if result.status != "ok":
        raise ModelError(f"relearn: the fine-tuning diverged ({result.diverged})")
    model.eval()
    return model, processor
