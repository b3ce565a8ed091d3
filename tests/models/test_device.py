"""The device a run uses (:mod:`pulse.models.device`): CUDA when present, the CPU otherwise,
``--device`` overriding; one line for a device that is not there."""

from __future__ import annotations

import os

import pytest
import torch

from pulse.errors import ConfigError
from pulse.models.device import bf16_training, choose_device, resolve_device, trainer_device


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


# (device, CUDA available, native bf16, the config's own choice) -> bf16 autocast
DECISIONS = [
    ("cuda", True, True, None, True),  # a GPU with bf16: bf16 unless the config says
    ("cuda", True, False, None, False),  # before Ampere: float32
    ("cpu", False, True, None, False),  # a CPU: float32 (bf16 cost the tiny models knowledge)
    ("cpu", True, True, None, False),  # --device cpu on a GPU machine: float32 as well
    ("cuda", True, True, False, False),  # the config's choice always wins
    ("cpu", False, True, True, True),  # CPU autocast when asked for
    ("cpu", True, False, True, True),  # the GPU's lack of bf16 does not concern a CPU run
]


@pytest.mark.parametrize(("device", "cuda", "supported", "given", "bf16"), DECISIONS)
def test_bf16_is_the_configs_choice_else_a_gpu_that_has_it(device, cuda, supported, given, bf16):
    facts = {"cuda_available": cuda, "bf16_supported": supported}
    assert bf16_training(device, **facts, explicit=given) is bf16


def test_bf16_asked_for_on_a_gpu_without_it_is_one_line():
    with pytest.raises(ConfigError, match=r"^the config asks for bf16 .* has no native bf16"):
        bf16_training("cuda", cuda_available=True, bf16_supported=False, explicit=True)


def test_the_cpu_keeps_the_trainer_off_gpus():
    options = trainer_device(torch.device("cpu"))
    assert options == ({"use_cpu": True} if torch.cuda.is_available() else {})


def test_pulse_run_refuses_an_unknown_device_in_one_line(pulse, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("seed: 0\n")
    done = pulse("run", str(config), "--out", str(tmp_path / "run"), "--device", "tpu")
    assert done.returncode == 2
    assert "--device: expected one of auto, cpu, cuda, got 'tpu'" in done.stderr
    assert not (tmp_path / "run").exists()
