"""Fixtures shared by every test folder (their definitions: :mod:`tests.fixtures`)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from pulse.models.tiny import build_tiny_lmm
from pulse.world.build import build_world
from pulse.world.train import train_world_models
from tests.fixtures.tiny import CORPUS, FAST_WORLD, TINY


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Tiny matrices gain nothing from threads, and on a busy 2-core machine spinning OpenMP
    threads make every test many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Path:
    """A small synthetic world (seed 0), built once per session. Tests read it only; one that
    needs to change it works on a copy."""
    return build_world(tmp_path_factory.mktemp("small") / "world", seed=0, size="small").path


@pytest.fixture(scope="session")
def tiny_models(small_world, tmp_path_factory) -> Path:
    """base/ and finetuned/ of the small world, trained a few steps each, once per session."""
    out = tmp_path_factory.mktemp("tiny-models")
    train_world_models(small_world, out, FAST_WORLD, progress=False, check=False)
    return out


@pytest.fixture(scope="session")
def tiny_llava():
    """(model, processor): the random tiny LLaVA (:data:`~tests.fixtures.tiny.TINY`), built
    once per session. Do not wrap or train it in place: take a deep copy."""
    return build_tiny_lmm(CORPUS * 20, TINY, seed=0)


@pytest.fixture(scope="session")
def pulse() -> Callable[..., subprocess.CompletedProcess]:
    """Run the `pulse` command line as a user does (its own process, real exit code)."""

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pulse.cli", *args],
            capture_output=True,
            text=True,
            timeout=300,
        )

    return run
