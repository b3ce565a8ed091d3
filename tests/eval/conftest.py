"""Fixtures of the model-driven evaluation tests: a small synthetic world and a tiny random LLaVA
whose tokenizer was trained on that world's questions (:data:`tests.fixtures.tiny.EVAL_TINY`),
each built once per session."""

from __future__ import annotations

import pytest

from pulse.data.mllmu import profile_items, read_mllmu
from pulse.data.schema import ItemKind
from pulse.models.tiny import build_tiny_lmm
from tests.fixtures.tiny import EVAL_TINY


@pytest.fixture(scope="session")
def world(small_world):
    return small_world


@pytest.fixture(scope="session")
def full_items(world):
    """Every item of the small world's Full_Set (16 people)."""
    return [i for p in read_mllmu(world / "mllmu", "Full_Set") for i in profile_items(p)]


@pytest.fixture(scope="session")
def mcq_items(full_items):
    return [i for i in full_items if i.kind is ItemKind.MCQ]


@pytest.fixture(scope="session")
def tiny(full_items):
    """(model, processor): random weights, a tokenizer that knows the world's words."""
    texts = [f"{i.question} {' '.join(i.options.values())} {i.answer}" for i in full_items]
    return build_tiny_lmm(texts * 2, EVAL_TINY, seed=0)


@pytest.fixture(scope="session")
def tiny_dir(tiny, tmp_path_factory):
    model, processor = tiny
    out = tmp_path_factory.mktemp("tiny_eval_model")
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
