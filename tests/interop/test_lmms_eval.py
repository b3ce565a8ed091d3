"""lmms-eval (its ``llava_hf`` model) scores an exported pulse model on the world's tasks that
ship in interop/lmms_eval (docs/interop.md). Slow, and skipped unless lmms-eval can be run:
importable here, or a Python that has it named by ``LMMS_EVAL_PYTHON`` (lmms-eval pins packages
of its own, so it is best kept in a virtual environment apart from pulse's)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pulse.models.export import export, resolve_source

TASKS = Path(__file__).resolve().parents[2] / "interop" / "lmms_eval"
NAMES = (
    "pulse_mllmu_forget_10",
    "pulse_mllmu_retain_90",
    "pulse_mllmu_test",
    "pulse_mllmu_celebrities",
    "pulse_mmbench_dev",
)


def _lmms_python() -> str | None:
    named = os.environ.get("LMMS_EVAL_PYTHON")
    if named:
        return named if Path(named).is_file() else None
    return sys.executable if importlib.util.find_spec("lmms_eval") is not None else None


@pytest.mark.slow
@pytest.mark.skipif(
    _lmms_python() is None,
    reason="lmms-eval is not installed here (set LMMS_EVAL_PYTHON to a Python that has it)",
)
def test_lmms_eval_scores_an_exported_model_on_the_world(small_world, tiny_models, tmp_path):
    python = _lmms_python()
    assert python is not None
    export(resolve_source(tiny_models / "finetuned"), tmp_path / "llava-pulse")
    (tmp_path / "world").symlink_to(small_world)  # the tasks read world/ in the working directory
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf")}  # fmt: skip
    model_args = "pretrained=llava-pulse,device=cpu,device_map=cpu,dtype=float32"
    result = subprocess.run(
        [
            python,
            "-m",
            "lmms_eval",
            "--model",
            "llava_hf",
            "--model_args",
            model_args,
            "--tasks",
            "pulse_world",
            "--include_path",
            str(TASKS),
            "--batch_size",
            "1",
            "--limit",
            "2",
            "--output_path",
            "out",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [results_file] = (tmp_path / "out").rglob("*_results.json")
    results = json.loads(results_file.read_text())["results"]
    for name in NAMES:
        assert {"letter_acc,none", "option_acc,none"} <= set(results[name]), results[name]
