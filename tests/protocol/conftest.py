"""Fixtures: tiny world models (a few steps of each stage) and a miniature run config."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from pulse.world.train import train_world_models

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "world"))
from test_train import FAST  # the world tests' fast training config


@pytest.fixture(scope="session")
def tiny_models(small_world, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("protocol-models")
    train_world_models(small_world, out, FAST, progress=False, check=False)
    return out


@pytest.fixture
def mini_config(small_world, tiny_models) -> dict[str, Any]:
    """Every MCQ scenario on local checkpoints, two requests, two training steps each."""
    return {
        "models": {"base": str(tiny_models / "base"), "finetuned": str(tiny_models / "finetuned")},
        "data": {
            "mllmu": str(small_world / "mllmu"),
            "mmbench": str(small_world / "mmbench" / "dev.tsv"),
            "pebench": str(small_world / "pebench" / "PEBench.csv"),
        },
        "train": {"max_steps": 2, "batch_size": 4},
        "eval": {"general_questions": 6},
        "methods": [{"method": "ga"}, {"method": "npo"}],
        "scenarios": {
            "finetuned": {"people": 8},
            "pretrained": {"top": 6, "forget": 2},
            "sequential": {"requests": 2},
            "scope": {"scopes": ["llm", "projector+llm"]},
        },
    }
