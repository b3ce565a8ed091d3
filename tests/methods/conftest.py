"""The methods tests' fixtures: one tiny LLaVA fine-tuned (through the shared loop) on a few
facts (definitions: :mod:`tests.fixtures.tiny`).

Methods are compared on a model that knows its forget set, so that unlearning has something
to remove (SimNPO's loss is ~0 on answers a model never learnt). Tests that wrap a model in an
adapter take a deep copy.
"""

from __future__ import annotations

import copy

import pytest
import torch

from pulse.methods.supervised import train_supervised
from pulse.models.adapters import UpdateScope, apply_scope
from pulse.models.tiny import build_tiny_lmm
from tests.fixtures.tiny import FORGET, RETAIN, TAUGHT, TAUGHT_CORPUS, TEACH


@pytest.fixture(scope="session")
def tiny():
    """(model, processor): a tiny LLaVA fine-tuned on the forget and retain facts."""
    torch.set_num_threads(1)
    model, processor = build_tiny_lmm(TAUGHT_CORPUS * 10, TAUGHT, seed=0)
    stats = train_supervised(model, processor, FORGET + RETAIN, TEACH)
    assert stats.last_loss < stats.first_loss / 4, stats.losses
    return model, processor


@pytest.fixture
def lora(tiny):
    """A fresh rank-4 LoRA on a copy of the tiny model's language model."""
    torch.manual_seed(0)
    return apply_scope(copy.deepcopy(tiny[0]), UpdateScope(rank=4, alpha=8))


@pytest.fixture(scope="session")
def processor(tiny):
    return tiny[1]


@pytest.fixture(scope="session")
def model_dir(tiny, tmp_path_factory):
    model, processor = tiny
    out = tmp_path_factory.mktemp("tiny_llava")
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
