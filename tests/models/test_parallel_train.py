"""`train_supervised` with `processes=2`: two local CPU processes (gloo) train one model data
parallel and the trained weights come back into the caller's model.

Each two-process training starts two Python processes (about 10 s on a busy 2-core machine)."""

from __future__ import annotations

import copy
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace

import psutil
import pytest
import torch

from pulse.errors import ConfigError, ModelError
from pulse.methods.supervised import TrainConfig, train_supervised
from pulse.models.adapters import UpdateScope, apply_scope
from pulse.models.chat import ChatCollator, ChatExample

CFG = TrainConfig(
    max_steps=4, batch_size=4, learning_rate=3e-3, logging_steps=1, progress=False, processes=2
)


@pytest.fixture(scope="module")
def data(examples):
    return list(examples) * 4


def _loss(model, processor, data) -> float:
    with torch.no_grad():
        return float(model(**ChatCollator(processor)(data)).loss)


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def trained(tiny_model, processor, data):
    """One two-process training of a copy of the tiny model: (model, state before, params
    before by identity, stats)."""
    model = copy.deepcopy(tiny_model)
    before = _state(model)
    params = dict(model.named_parameters())
    stats = train_supervised(model, processor, data, CFG)
    return model, before, params, stats


def test_two_processes_train_and_lower_the_loss(trained):
    _, _, _, stats = trained
    assert stats.steps == 4 and stats.examples == 16 and stats.seconds > 0
    assert len(stats.losses) == 4
    assert stats.first_loss == stats.losses[0] and stats.last_loss == stats.losses[-1]
    assert stats.last_loss < stats.first_loss


def test_trained_weights_are_loaded_into_the_callers_model(trained, processor, data):
    model, before, params, _ = trained
    assert all(p is params[n] for n, p in model.named_parameters())  # in place
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any("language_model" in k for k in changed)
    assert any("multi_modal_projector" in k for k in changed)
    assert not model.training and all(p.grad is None for p in model.parameters())
    initial = copy.deepcopy(model)
    initial.load_state_dict(before)
    assert _loss(model, processor, data) < _loss(initial, processor, data) - 0.5


@pytest.mark.slow  # the heaviest of its kind (2-core suite time): pytest -m slow
def test_same_config_and_processes_give_identical_weights(trained, tiny_model, processor, data):
    first, _, _, stats = trained
    model = copy.deepcopy(tiny_model)
    again = train_supervised(model, processor, data, CFG)
    assert again.losses == stats.losses
    reference = first.state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in model.state_dict().items())


@pytest.mark.slow  # the heaviest of its kind (2-core suite time): pytest -m slow
def test_peft_model_trains_in_two_processes(tiny_model, processor, data):
    torch.manual_seed(0)
    model = apply_scope(copy.deepcopy(tiny_model), UpdateScope(rank=4, alpha=8))
    before = _state(model)
    start = _loss(model, processor, data)
    stats = train_supervised(model, processor, data, CFG)
    assert stats.steps == 4 and stats.last_loss < stats.first_loss
    after = model.state_dict()
    changed = {k for k, v in after.items() if not torch.equal(v, before[k])}
    assert changed and all("lora_" in k for k in changed)  # the frozen base is untouched
    assert any("language_model" in k and "lora_B" in k for k in changed)
    assert _loss(model, processor, data) < start


def test_batch_size_must_split_over_processes():
    with pytest.raises(ConfigError, match=r"'batch_size' 5 does not split evenly over 2"):
        replace(CFG, batch_size=5)
    with pytest.raises(ConfigError, match="'processes'"):
        replace(CFG, processes=0)


def test_processes_must_match_a_launchers_run(tiny_model, processor, data, monkeypatch):
    # Under torchrun the ranks exist already: no workers are started, the sizes must agree.
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ConfigError, match="inside a distributed run of 3 processes"):
        train_supervised(copy.deepcopy(tiny_model), processor, data, CFG)


def test_a_workers_error_is_one_error_and_nothing_is_left(
    tiny_model, processor, data, tmp_path, monkeypatch
):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    bad = [*data[:7], ChatExample("Who is <image> here?", "nobody")]
    with pytest.raises(ModelError, match="image placeholder") as info:
        train_supervised(copy.deepcopy(tiny_model), processor, bad, CFG)
    assert "Traceback" in str(info.value.__cause__)  # the worker's, for --debug
    assert not multiprocessing.active_children()
    assert not list(tmp_path.iterdir())  # the job directory is gone


CTRL_C = """
import copy, signal, sys, torch
# Ctrl-C as in an interactive shell: a harness that ignores SIGINT hands that on to its
# children (an ignored signal stays ignored across exec, and Python then keeps it ignored).
print("inherited SIGINT handler:", signal.getsignal(signal.SIGINT), flush=True)
signal.signal(signal.SIGINT, signal.default_int_handler)
from pulse.models.chat import ChatExample
from pulse.models.loading import load_model_and_processor
from pulse.methods.supervised import TrainConfig, train_supervised

if __name__ == "__main__":
    model, processor = load_model_and_processor({model_dir!r}, dtype="float32")
    data = [ChatExample("Where does Bruno Keller live?", "Basel")] * 8
    cfg = TrainConfig(max_steps=100000, batch_size=4, progress=False, processes=2)
    print("start", flush=True)
    train_supervised(model, processor, data, cfg)
"""


@pytest.mark.slow  # the heaviest of its kind (2-core suite time): pytest -m slow
def test_ctrl_c_stops_the_workers_and_removes_the_job(tmp_path, tiny_dir):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(CTRL_C.format(model_dir=str(tiny_dir))))
    jobs = tmp_path / "tmp"
    jobs.mkdir()
    env = {**os.environ, "TMPDIR": str(jobs)}
    # Output goes to files, not pipes: spawned workers inherit the parent's descriptors, and a
    # pipe would then wait for the last of them rather than for the parent.
    out_file, err_file = tmp_path / "out.txt", tmp_path / "err.txt"
    with out_file.open("wb") as out, err_file.open("wb") as errors:
        proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=out, stderr=errors)
    try:
        parent = psutil.Process(proc.pid)
        deadline = time.monotonic() + 120
        workers: list[psutil.Process] = []
        while len(workers) < 2 or not any(jobs.glob("pulse-parallel-*/job.pkl")):
            assert proc.poll() is None, err_file.read_text()[-2000:]
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.2)
            workers = [c for c in parent.children() if "spawn_main" in " ".join(c.cmdline())]
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "KeyboardInterrupt" in err_file.read_text()
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive
    assert not list(jobs.iterdir())
