"""The shared loop: divergence guard, retain sampling per rank, refusals, accumulation, logs."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from pulse.methods import (
    REFUSALS,
    LoopConfig,
    UnlearnCollator,
    UnlearnData,
    get_method,
    refusal_for,
    train_method,
)
from tests.fixtures.tiny import FORGET, RETAIN

FAST = LoopConfig(max_steps=2, batch_size=2, learning_rate=1e-2, progress=False, report_to=())


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_divergence_guard_stops_on_a_forced_nan(lora, processor):
    name = next(n for n, _ in lora.named_parameters() if "lora_B" in n)
    with torch.no_grad():
        lora.get_parameter(name).fill_(float("nan"))
    before = snapshot(lora)
    result = train_method(lora, processor, get_method("ga"), UnlearnData(FORGET, RETAIN), FAST)
    assert result.status == "diverged" and not result.ok
    assert result.diverged == {"step": 1, "value": "nan", "reason": "not finite"}
    assert result.steps == 0 and result.history == []
    # no optimizer step was taken with the bad loss
    after = snapshot(lora)
    assert all(torch.equal(after[n], v) for n, v in before.items() if n != name)


def test_divergence_guard_stops_beyond_the_loss_bound(lora, processor):
    cfg = replace(FAST, max_steps=50, learning_rate=5e-2, loss_bound=3.0)
    result = train_method(lora, processor, get_method("ga"), UnlearnData(FORGET), cfg)
    assert result.status == "diverged"
    step, value = result.diverged["step"], result.diverged["value"]
    assert result.diverged["reason"] == "|loss| > 3"
    assert abs(value) > 3 and math.isfinite(value)
    assert step == result.steps + 1 > 1  # the steps before were taken and logged
    assert [e["step"] for e in result.history] == list(range(1, step))


def test_the_last_update_is_checked_before_the_result_is_ok(lora, processor):
    """The guard sees a loss before its backward: a last step that blows the weights up (or
    the loss past its bound) is caught after training, not saved as ok."""
    cfg = replace(FAST, max_steps=1, learning_rate=1e4, loss_bound=1.0)
    result = train_method(lora, processor, get_method("ga"), UnlearnData(FORGET), cfg)
    assert result.status == "diverged" and result.steps == 1
    assert result.diverged["step"] == 1
    assert result.diverged["reason"].endswith("after the last step")


def test_weights_made_infinite_by_the_last_step_are_diverged(lora, processor, monkeypatch):
    from pulse.methods.trainer import UnlearnTrainer

    train = UnlearnTrainer.train

    def poisoned(self, *args, **kwargs):
        out = train(self, *args, **kwargs)
        name = next(n for n, p in self.model.named_parameters() if p.requires_grad)
        with torch.no_grad():
            self.model.get_parameter(name).fill_(float("inf"))
        return out

    monkeypatch.setattr(UnlearnTrainer, "train", poisoned)
    result = train_method(lora, processor, get_method("ga"), UnlearnData(FORGET), FAST)
    assert result.status == "diverged"
    assert result.diverged == {
        "step": 2,
        "value": "nan",
        "reason": "weights not finite after the step",
    }


def test_retain_sampling_splits_one_draw_over_ranks_and_repeats_within_one(processor):
    data = UnlearnData(FORGET, RETAIN)

    def draws(batch: list[int], rank: int = 0, processes: int = 1) -> list[list[int]]:
        collator = UnlearnCollator(
            processor, data, {"retain"}, seed=3, process_index=rank, processes=processes
        )
        return [collator(batch)["retain_index"].tolist() for _ in range(5)]

    alone = draws([0, 1, 2, 3])
    rank0, rank1 = draws([0, 1], 0, 2), draws([2, 3], 1, 2)
    # Two processes: each takes its block of the step's one draw, the step one process's.
    assert [a + b for a, b in zip(rank0, rank1, strict=True)] == alone
    assert rank0 != rank1
    assert draws([0, 1, 2, 3]) == alone  # seeded: the same on a rerun
    # without replacement within a cycle: every retain example before any repeats
    flat = [i for step in alone for i in step]
    assert sorted(flat[: len(RETAIN)]) == list(range(len(RETAIN)))


def test_collator_builds_only_the_sub_batches_a_method_uses(processor):
    data = UnlearnData(FORGET, RETAIN, seed=5)
    out = UnlearnCollator(processor, data, {"forget", "idk"})([2, 0])
    assert set(out) == {"forget", "idk", "forget_index"}
    assert out["forget_index"].tolist() == [2, 0]
    assert out["forget"]["input_ids"].shape[0] == out["idk"]["input_ids"].shape[0] == 2
    # idk rows: the forget question and image, answered with the example's refusal
    assert data.idk[2].question == FORGET[2].question and data.idk[2].image is FORGET[2].image
    assert data.idk[2].answer == refusal_for(2, 5) in REFUSALS


def test_refusals_are_seeded_per_example():
    assert refusal_for(7, 0) == refusal_for(7, 0)
    assert len({refusal_for(i, 0) for i in range(40)}) > 1


def test_gradient_accumulation_and_loss_terms_in_the_log(lora, processor):
    cfg = replace(FAST, batch_size=1, grad_accum=2)
    result = train_method(lora, processor, get_method("gd"), UnlearnData(FORGET, RETAIN), cfg)
    assert result.ok and result.steps == 2 and len(result.step_seconds) == 2
    for entry in result.history:
        # the logged loss is the mean of the micro-batches' losses, i.e. of their terms
        assert entry["loss"] == pytest.approx(-entry["forget_nll"] + entry["retain_nll"], abs=1e-4)


def test_methods_needing_retain_data_say_so(lora, processor):
    from pulse.errors import ConfigError

    with pytest.raises(ConfigError, match="needs retain examples"):
        train_method(lora, processor, get_method("ga_kl"), UnlearnData(FORGET), FAST)


def test_group_by_length_batches_similar_lengths_and_trains(lora, processor, monkeypatch):
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from pulse.methods.trainer import UnlearnTrainer

    seen = {}
    original = UnlearnTrainer._get_train_sampler

    def spy(self, train_dataset=None):
        seen["sampler"] = original(self, train_dataset)
        return seen["sampler"]

    monkeypatch.setattr(UnlearnTrainer, "_get_train_sampler", spy)
    examples = FORGET + RETAIN
    cfg = replace(FAST, group_by_length=True, batch_size=2, max_steps=3)
    result = train_method(lora, processor, get_method("ga"), UnlearnData(examples, []), cfg)
    assert result.ok and result.steps == 3
    sampler = seen["sampler"]
    assert isinstance(sampler, LengthGroupedSampler)
    assert sorted(sampler) == list(range(len(examples)))  # every example once per epoch


def test_bf16_on_a_cpu_trains_with_eager_attention_and_gives_the_kernel_back(lora, processor):
    # The fixture's model was trained before, in float32: bf16 must apply all the same.
    model = lora.get_base_model()
    before = model.config._attn_implementation
    seen = []  # (attention kernel, dtype of a frozen projection's output) per forward
    fc1 = next(m for n, m in model.named_modules() if n.endswith("encoder.layers.0.mlp.fc1"))
    hook = fc1.register_forward_hook(
        lambda *args: seen.append((model.config._attn_implementation, args[2].dtype))
    )
    try:
        cfg = replace(FAST, bf16=True)
        result = train_method(lora, processor, get_method("ga"), UnlearnData(FORGET), cfg)
    finally:
        hook.remove()
    assert result.ok and result.steps == 2
    assert seen and set(seen) == {("eager", torch.bfloat16)}
    assert model.config._attn_implementation == before != "eager"
