"""`pulse finetune`: a local LMM fine-tuned on ft_Data with a forget set left out, merged, and
the record a run reads to refuse it as the oracle of another forget set."""

from __future__ import annotations

import json

import pytest

from pulse.data.mllmu import read_mllmu
from pulse.errors import DataError
from pulse.methods.finetune import RECORD, finetune_pairs, read_excluded
from pulse.models.loading import load_model_and_processor


@pytest.fixture(scope="module")
def mllmu(small_world):
    return small_world / "mllmu"


def test_excluded_people_leave_no_pair(mllmu):
    people = sorted(p.id for p in read_mllmu(mllmu, "ft_Data"))
    pairs, kept = finetune_pairs(mllmu, "ft_Data", people[:3])
    assert kept == len(people) - 3
    assert {pair.entity_id for pair in pairs} == set(people[3:])
    with pytest.raises(DataError, match="nobody"):
        finetune_pairs(mllmu, "ft_Data", ["nobody"])


def test_pulse_finetune_saves_a_merged_model_that_records_what_it_left_out(
    pulse, tiny_models, mllmu, tmp_path
):
    forget = sorted(p.id for p in read_mllmu(mllmu, "forget_10"))
    out = tmp_path / "oracle"
    result = pulse(
        "finetune", "--model", str(tiny_models / "base"), "--data", str(mllmu),
        "--out", str(out), "--exclude", "forget_10", "--max-steps", "2", "--batch-size", "4",
        "--rank", "4", "--alpha", "8",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"({len(forget)} left out)" in result.stdout
    assert read_excluded(out) == forget
    record = json.loads((out / RECORD).read_text())
    assert record["config"] == "ft_Data" and record["train"]["max_steps"] == 2
    model, _ = load_model_and_processor(out, dtype="float32")
    assert not any("lora" in name for name, _ in model.named_parameters())


@pytest.mark.slow  # the heaviest of its kind (2-core suite time): pytest -m slow
def test_pulse_finetune_names_an_unknown_person_in_one_line(pulse, tiny_models, mllmu, tmp_path):
    result = pulse(
        "finetune", "--model", str(tiny_models / "base"), "--data", str(mllmu),
        "--out", str(tmp_path / "x"), "--exclude", "nobody,else",
    )  # fmt: skip
    assert result.returncode != 0
    assert "nobody" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
