"""`pulse finetune` under `torchrun` with two CPU processes (gloo): one data-parallel training
through the same loop as `pulse unlearn`, whose merged weights are those of one process
training on the whole batch, within float tolerance; rank 0 alone saves and reports.

Marked slow: starting the two ranks and the one-process run (three Python processes importing
torch and transformers) takes two to three minutes on a busy 2-core machine. Without the token
mean over every rank's answer tokens (pulse.methods.sft) the two differed by as much as
training moved the weights; with it, by about 1e-8."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from pulse.methods.finetune import RECORD, finetune
from pulse.methods.supervised import TrainConfig
from pulse.models.scope import ScopeConfig, parse_scope_label

STEPS, BATCH, LR, RANK, ALPHA = 3, 4, 1e-3, 4, 8


def _weights(model_dir) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for path in sorted(model_dir.glob("*.safetensors")):
        out.update(load_file(path))
    return out


@pytest.mark.slow
def test_two_processes_give_one_processs_merged_weights(small_world, tiny_models, tmp_path):
    mllmu, base = small_world / "mllmu", tiny_models / "base"
    two = tmp_path / "two"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "-m", "pulse.cli", "finetune", "--model", str(base), "--data", str(mllmu),
        "--out", str(two), "--exclude", "forget_10", "--max-steps", str(STEPS),
        "--batch-size", str(BATCH), "--lr", str(LR), "--rank", str(RANK), "--alpha", str(ALPHA),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("fine-tuned on") == 1  # one report, from rank 0
    record = json.loads((two / RECORD).read_text())
    assert record["train"]["processes"] == 2 and record["train"]["batch_size"] == BATCH

    one = tmp_path / "one"
    train = TrainConfig(max_steps=STEPS, batch_size=BATCH, learning_rate=LR, progress=False)
    scope = parse_scope_label("llm", ScopeConfig(rank=RANK, alpha=ALPHA)).update_scope()
    result = finetune(base, mllmu, one, exclude=record["excluded"], train=train, scope=scope)
    assert result.steps == STEPS
    merged, alone, before = _weights(two), _weights(one), _weights(base)
    assert merged.keys() == alone.keys()
    changed = [k for k in alone if not torch.equal(alone[k], before[k])]
    assert changed  # the comparison is not between two untrained models
    worst = max(float((merged[k] - alone[k]).abs().max()) for k in alone)
    moved = max(float((alone[k] - before[k]).abs().max()) for k in changed)
    assert worst <= 1e-6 and worst < moved / 1000, (worst, moved)
