"""Fixture: a miniature run config on the session's tiny world models."""

from __future__ import annotations

from typing import Any

import pytest


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
            "pebench": {"enabled": False},  # its own test enables it
        },
    }
