"""The device a run uses (:mod:`pulse.models.device`): CUDA when present, the CPU otherwise,
``--device`` overriding; one line for a device that is not there."""

from __future__ import annotations

import os

import pytest
import torch

from pulse.errors import ConfigError
from pulse.models.device import check_precision, choose_device, resolve_device, trainer_device


def test_cpu_hides_the_gpus_and_auto_falls_back_to_the_cpu(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert choose_device("cpu") == torch.device("cpu")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""  # the Trainer and the loaders see no GPU
    assert resolve_device().type == "cpu"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert choose_device("auto").type == expected


def test_a_device_that_is_not_there_is_one_line(monkeypatch):
    with pytest.raises(ConfigError, match="expected one of auto, cpu, cuda"):
        choose_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            choose_device("cuda")


def test_the_cpu_takes_any_precision_and_keeps_the_trainer_off_gpus():
    check_precision(torch.device("cpu"), dtype="bfloat16", bf16=True)  # CPU autocast runs
    options = trainer_device(torch.device("cpu"))
    assert options == ({"use_cpu": True} if torch.cuda.is_available() else {})


def test_pulse_run_refuses_an_unknown_device_in_one_line(pulse, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("seed: 0\n")
    done = pulse("run", str(config), "--out", str(tmp_path / "run"), "--device", "tpu")
    assert done.returncode == 2
    assert "--device: expected one of auto, cpu, cuda, got 'tpu'" in done.stderr
    assert not (tmp_path / "run").exists()
