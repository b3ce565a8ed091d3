"""A run's precision decided for its device (:mod:`pulse.protocol.precision`): bf16 on a GPU
that has it, float32 on a CPU, the config's own choice always first; the decision is part of
the config's digest and the requests' keys, and the manifest and report say it."""

from __future__ import annotations

import json

import pytest
import torch

from pulse.errors import ConfigError
from pulse.protocol.config import RunConfig, dump_config, load_config, parse_config
from pulse.protocol.leaderboard import LeaderboardConfig, base_data, sweep_config
from pulse.protocol.precision import for_device, resolve_precision
from pulse.protocol.store import MANIFEST, RunStore
from pulse.report.rundir import load_run
from pulse.report.runinfo import build_run_info

BF16_GPU = {"device_type": "cuda", "cuda_available": True, "bf16_supported": True}
OLD_GPU = {"device_type": "cuda", "cuda_available": True, "bf16_supported": False}
CPU = torch.device("cpu")


def test_a_cpu_run_is_left_as_it_was():
    # The very config, so its digest (pinned in tests/protocol/test_config.py for the default,
    # which is the demo's): run directories made before the precision was decided resume.
    demo = load_config(None)
    for config in (RunConfig(), demo, parse_config({"seed": 3, "train": {"lr": 1e-4}})):
        assert for_device(config, CPU) is config


def test_a_gpu_with_bf16_trains_in_bf16_and_the_decision_keys_the_run():
    plain = RunConfig()
    gpu = resolve_precision(plain, **BF16_GPU)
    assert gpu.train.bf16
    assert all(gpu.train_of(name).bf16 for name in gpu.enabled())
    assert gpu.digest() != plain.digest()  # its own run directory
    request = gpu.train_of("finetuned").identity()  # a request's cache key holds it
    assert request != plain.train_of("finetuned").identity() and request["bf16"] is True
    # Its config.yaml, run again, is the same config (decided: nothing left to decide).
    again = parse_config(json.loads(json.dumps(gpu.to_dict())))
    assert resolve_precision(again, **BF16_GPU) is again
    assert again.digest() == gpu.digest() and "bf16: true" in dump_config(gpu)


def test_the_configs_own_precision_always_wins():
    fp32 = parse_config({"train": {"bf16": False}})
    assert resolve_precision(fp32, **BF16_GPU) is fp32
    assert fp32.digest() == RunConfig().digest()  # the same config as the default on a CPU
    assert not resolve_precision(
        parse_config({"models": {"dtype": "float32"}}), **BF16_GPU
    ).train.bf16
    assert resolve_precision(parse_config({"models": {"dtype": "bfloat16"}}), **BF16_GPU).train.bf16
    cpu_bf16 = parse_config({"train": {"bf16": True}})
    assert for_device(cpu_bf16, CPU) is cpu_bf16  # CPU autocast when asked for
    own = resolve_precision(
        parse_config({"scenarios": {"finetuned": {"train": {"bf16": False}}}}), **BF16_GPU
    )
    assert own.train.bf16 and not own.train_of("finetuned").bf16 and own.train_of("pretrained").bf16


@pytest.mark.parametrize(
    "data",
    [
        {"train": {"bf16": True}},
        {"models": {"dtype": "bfloat16"}},
        {"scenarios": {"finetuned": {"train": {"bf16": True}}}},
    ],
)
def test_bf16_asked_for_on_a_gpu_without_it_is_one_line(data):
    assert not resolve_precision(RunConfig(), **OLD_GPU).train.bf16  # left open: float32
    with pytest.raises(ConfigError, match=r"^the config asks for bf16 [^\n]*$"):
        resolve_precision(parse_config(data), **OLD_GPU)


def test_a_bad_precision_is_one_line():
    with pytest.raises(ConfigError, match=r"^config: train\.bf16: [^\n]*$"):
        parse_config({"train": {"bf16": "maybe"}})
    with pytest.raises(ConfigError, match=r"^config: models\.dtype: [^\n]*$"):
        parse_config({"models": {"dtype": "fp8"}})


def test_the_manifest_and_the_report_say_the_precision(tmp_path):
    config = parse_config({"seed": 2})
    store = RunStore.open(tmp_path / "run", config)
    said = "training: no autocast; weights: as stored"
    assert store.manifest["precision"] == said
    assert ("precision", said) in build_run_info(load_run(store.root)).facts
    # A run directory from before the precision was kept gets it when it resumes.
    path = store.root / MANIFEST
    manifest = json.loads(path.read_text())
    del manifest["precision"]
    path.write_text(json.dumps(manifest))
    assert RunStore.open(store.root, config).manifest["precision"] == said
    gpu = resolve_precision(config, **BF16_GPU)
    assert RunStore.open(tmp_path / "gpu", gpu).manifest["precision"] == (
        "training: bf16 autocast; weights: as stored"
    )


def test_the_leaderboards_runs_leave_the_precision_to_the_device(tmp_path):
    config = LeaderboardConfig()
    sweep = sweep_config(config, base_data(config, tmp_path))
    assert for_device(sweep, CPU) is sweep
    assert resolve_precision(sweep, **BF16_GPU).train.bf16
