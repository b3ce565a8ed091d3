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


@pytest.fixture
def no_new_work(monkeypatch):
    """A context in which training a request, evaluating a state, scoring membership pairs or
    attacking a state fails the test: what a resumed (or moved) finished run must not do."""
    from contextlib import contextmanager

    from pulse.eval import membership
    from pulse.methods import request
    from pulse.protocol.attacks import quantize, relearn
    from pulse.protocol.measure import Measurer

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run trained, evaluated or attacked again")

    @contextmanager
    def forbidden():
        with monkeypatch.context() as patched:
            patched.setattr(request, "run_request", refuse)
            patched.setattr(Measurer, "evaluate", refuse)
            patched.setattr(membership, "score_pairs", refuse)
            patched.setattr(relearn, "relearned", refuse)
            patched.setattr(quantize, "quantize", refuse)
            yield

    return forbidden
