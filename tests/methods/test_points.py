"""Evaluation along a request (train.eval_every): points at the right steps, the same final
weights as without them, early stopping at the first point that asks for it, and the same
points under two data-parallel CPU processes (gloo), each scoring half of the questions."""

from __future__ import annotations

import json
import random

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from pulse.data.mllmu import profile_items, read_mllmu
from pulse.data.schema import ItemKind
from pulse.eval.mcq import MCQConfig, score_mcq
from pulse.methods.points import PointPlan
from pulse.methods.request import run_unlearning
from pulse.models import collective
from pulse.models.parallel import run_data_parallel
from pulse.models.settings import UNLEARN_DEFAULTS, eval_schedule, eval_steps
from tests.methods.test_request import fast


@pytest.fixture(scope="module")
def mllmu(small_world):
    return small_world / "mllmu"


def test_eval_every_reads_steps_or_a_fraction_of_an_epoch():
    assert eval_schedule("10 steps") == (10, 0.0) and eval_schedule("0.25 epoch") == (0, 0.25)
    assert eval_schedule(None) == (0, 0.0) and eval_schedule("off") == (0, 0.0)
    assert eval_steps("3 steps", 20, 10) == [3, 6, 9]
    assert eval_steps("0.25 epoch", 20, 20) == [5, 10, 15]  # the last step is the request's own
    assert eval_steps("0.4 epoch", 25, 25) == [10, 20]
    assert eval_steps(None, 20, 20) == []
    for bad in ("0 steps", "1.5 steps", "every now and then", "-1 epoch"):
        with pytest.raises(ValueError):
            eval_schedule(bad)
    with pytest.raises(ValueError, match="eval_every"):
        UNLEARN_DEFAULTS.model_validate({"stop_at": "target"})


def test_points_come_at_their_steps_and_leave_the_weights_alone(model_dir, mllmu, tmp_path):
    seen: list[tuple[int, bool]] = []

    def evaluate(step, model, processor):
        # What an evaluation does to the state it runs in: forwards, random draws.
        seen.append((step, model.training))
        random.random(), torch.rand(3)
        batch = processor.tokenizer(["a question"], return_tensors="pt")
        model(input_ids=batch["input_ids"])
        return None

    settings = fast(max_steps=5)
    plain = run_unlearning(
        model_dir, mllmu, "f002,f007", "retain_50", "ga_kl", None, tmp_path / "a", **settings
    )
    along = run_unlearning(
        model_dir,
        mllmu,
        "f002,f007",
        "retain_50",
        "ga_kl",
        None,
        tmp_path / "b",
        points=PointPlan("2 steps", evaluate),
        **settings,
    )
    assert seen == [(2, False), (4, False)]  # in eval mode, before the last step
    record = json.loads((tmp_path / "b" / "result.json").read_text())
    assert record["eval_every"] == "2 steps" and record["eval_steps"] == [2, 4]
    assert record["stopped"] is None and along.steps == plain.steps == 5
    first = load_file(tmp_path / "a" / "adapter" / "adapter_model.safetensors")
    second = load_file(tmp_path / "b" / "adapter" / "adapter_model.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_early_stopping_ends_at_the_first_point_that_asks(model_dir, mllmu, tmp_path):
    asked: list[int] = []

    def evaluate(step, model, processor):
        asked.append(step)
        return "forget accuracy at the target" if step >= 2 else None

    result = run_unlearning(
        model_dir,
        mllmu,
        "f002,f007",
        "retain_50",
        "ga",
        None,
        tmp_path / "out",
        points=PointPlan("1 steps", evaluate),
        **fast(max_steps=5),
    )
    assert result.ok and result.steps == 2 and asked == [1, 2]
    record = json.loads((tmp_path / "out" / "result.json").read_text())
    assert record["stopped"] == {"step": 2, "reason": "forget accuracy at the target"}
    assert record["eval_steps"] == [1]  # the stopping point is the request's own state


# --- under a data-parallel launch -------------------------------------------------------------

CFG = MCQConfig(batch_size=4, scorer="option_text")


def _mcq_items(mllmu):
    profiles = [p for p in read_mllmu(mllmu, "forget_50") if p.id in ("f002", "f007")]
    items = [i for p in profiles for i in profile_items(p) if i.kind is ItemKind.MCQ]
    return items[:-1]  # an odd count: the two processes' blocks differ in size


def _request_along(placeholder, model_dir, mllmu, out, items):
    """One process of two (or the only one): a request scored at every step, each point's
    questions split over the processes; it asks to stop at step 2."""
    collective.join(torch.device("cpu"))
    seen: dict[str, list[bool]] = {}

    def evaluate(step, model, processor):
        records = score_mcq(model, processor, items, CFG, shard=True)
        seen[str(step)] = [bool(r.correct) for r in records]
        return "at the level" if step == 2 else None

    result = run_unlearning(
        model_dir,
        mllmu,
        "f002,f007",
        "retain_50",
        "ga",
        None,
        out,
        points=PointPlan("1 steps", evaluate),
        **fast(max_steps=4, batch_size=2),
    )
    gathered = collective.gathered(seen)
    return {"seen": seen, "same": all(g == seen for g in gathered), "steps": result.steps}


@pytest.mark.slow  # two spawned processes and a one-process run: minutes on a busy 2-core machine
def test_points_under_two_processes_are_scored_together(model_dir, mllmu, tmp_path):
    items = _mcq_items(mllmu)
    args = (model_dir, mllmu, tmp_path / "two", items)
    two = run_data_parallel(_request_along, nn.Identity(), args, 2, threads=1)
    # Both processes evaluated every point on all the questions, and stopped together.
    assert two["same"] and sorted(two["seen"]) == ["1", "2"] and two["steps"] == 2
    assert all(len(v) == len(items) for v in two["seen"].values())
    record = json.loads((tmp_path / "two" / "result.json").read_text())
    assert record["processes"] == 2 and record["eval_steps"] == [1]
    assert record["stopped"] == {"step": 2, "reason": "at the level"}
    # One process training the same steps on the whole batch scores the same points.
    alone = _request_along(nn.Identity(), model_dir, mllmu, tmp_path / "one", items)
    assert alone["seen"] == two["seen"]
