"""The relearning attack brings back what a state forgot. The taught tiny model answers its
forget facts; gradient ascent on them makes it fail them (a state that forgot); the attack
(:func:`pulse.protocol.attacks.relearn.relearned`: a few LoRA steps on those facts' training
pairs) makes it answer them again. Accuracy here is the share of answer tokens predicted
(teacher-forced): the taught model's four facts are too few for a multiple-choice score."""

from __future__ import annotations

import copy

import torch

from pulse.data.schema import TrainPair, encode_png
from pulse.methods.batches import UnlearnData
from pulse.methods.losses import select_answers
from pulse.methods.registry import get_method
from pulse.methods.trainer import LoopConfig, train_method
from pulse.models.adapters import UpdateScope, apply_scope, merge
from pulse.models.chat import ChatCollator
from pulse.models.settings import TrainSettings
from pulse.protocol.attacks.relearn import relearned
from tests.fixtures.tiny import FORGET, RETAIN


def _pairs() -> list[TrainPair]:
    return [
        TrainPair("forget", e.question, e.answer, encode_png(e.image) if e.image else None)
        for e in FORGET
    ]


@torch.no_grad()
def _accuracy(model, processor) -> float:
    """The share of the forget answers' tokens the model predicts (teacher-forced argmax)."""
    batch = ChatCollator(processor)(FORGET)
    labels = batch.pop("labels")
    answers = select_answers(model.eval()(**batch).logits, labels)
    return (answers.logits.argmax(-1) == answers.targets).float().mean().item()


def _forgot(tiny):
    """The taught model after gradient ascent on its forget facts, adapter merged."""
    model, processor = tiny
    model = apply_scope(copy.deepcopy(model), UpdateScope(rank=8, alpha=16))
    retain = [TrainPair("retain", e.question, e.answer) for e in RETAIN if e.image is None]
    loop = LoopConfig(
        max_steps=12, batch_size=4, learning_rate=1e-2, seed=0, progress=False, report_to=("none",)
    )
    result = train_method(
        model, processor, get_method("ga"), UnlearnData(_pairs(), retain, seed=0), loop
    )
    assert result.status == "ok", result.diverged
    return merge(model).eval(), processor


def test_relearning_brings_back_what_a_state_forgot(tiny):
    knew = _accuracy(*tiny)
    state = _forgot(tiny)
    forgot = _accuracy(*state)
    assert knew >= 0.75 and forgot <= knew - 0.5, (knew, forgot)
    attack = TrainSettings(lr=1e-2, max_steps=40, batch_size=4)
    again = relearned(lambda: (copy.deepcopy(state[0]), state[1]), _pairs(), attack, seed=0)
    assert _accuracy(*again) >= forgot + 0.5, (knew, forgot, _accuracy(*again))
