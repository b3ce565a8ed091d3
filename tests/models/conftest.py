"""The model tests' fixtures: the random tiny LLaVA (``tiny``, the session's ``tiny_llava``) and
examples (definitions: :mod:`tests.fixtures.tiny`).

Tests that wrap a model in an adapter (PEFT edits modules in place) take a deep copy.
"""

from __future__ import annotations

import copy

import pytest

from pulse.models.chat import ChatExample
from pulse.models.tiny import TinyModelConfig
from tests.fixtures.tiny import CORPUS, TINY, sized_examples


@pytest.fixture(scope="session")
def tiny_config() -> TinyModelConfig:
    return TINY


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return CORPUS * 20


@pytest.fixture(scope="session")
def tiny(tiny_llava):
    """(model, processor) of the tiny LLaVA; do not wrap it, take ``fresh_model`` for that."""
    return tiny_llava


@pytest.fixture(scope="session")
def tiny_model(tiny):
    return tiny[0]


@pytest.fixture(scope="session")
def processor(tiny):
    return tiny[1]


@pytest.fixture
def fresh_model(tiny_model):
    return copy.deepcopy(tiny_model)


@pytest.fixture(scope="session")
def tiny_dir(tiny, tmp_path_factory):
    model, processor = tiny
    out = tmp_path_factory.mktemp("tiny_llava")
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def examples() -> list[ChatExample]:
    """Mixed image / text-only examples with images of different sizes."""
    return sized_examples()
