"""Packed batches give the padded batch's losses, per token and per example, with images."""

from __future__ import annotations

import copy

import pytest
import torch

from pulse.errors import ConfigError, ModelError
from pulse.methods.base import answer_tokens
from pulse.methods.batches import UnlearnData
from pulse.methods.losses import mean_nll, sequence_logprob
from pulse.methods.sft import sft
from pulse.methods.trainer import LoopConfig, train_method
from pulse.models.chat import ChatCollator
from pulse.models.packing import EXAMPLE_INDEX, check_packable, first_fit, pack_batch
from tests.fixtures.tiny import MIXED_EXAMPLES as EXAMPLES


def _pack(processor, batch, max_tokens):
    collator = ChatCollator(processor)
    return pack_batch(
        batch,
        max_tokens,
        pad_token_id=collator.tokenizer.pad_token_id,
        image_token_id=collator.image_token_id,
    )


def test_first_fit_fills_rows_longest_first():
    rows = first_fit([5, 3, 8, 2, 6], capacity=10)
    assert rows == [[2, 3], [1, 4], [0]]  # 8 then 2 in row 0; 6 then 3 in row 1; 5
    assert sorted(i for row in rows for i in row) == [0, 1, 2, 3, 4]
    assert first_fit([12, 3], capacity=10) == [[0], [1]]  # longer than a row: a row of its own


def test_packed_batch_has_fewer_rows_and_every_token_once(processor):
    batch = ChatCollator(processor)(EXAMPLES)
    packed = _pack(processor, batch, 64)
    assert packed["input_ids"].shape[0] < batch["input_ids"].shape[0]
    assert "attention_mask" not in packed
    real = batch["attention_mask"].bool()
    assert (packed[EXAMPLE_INDEX] >= 0).sum() == real.sum()
    for i in range(len(EXAMPLES)):  # each example's tokens, in order, with positions from 0
        where = packed[EXAMPLE_INDEX] == i
        assert packed["input_ids"][where].tolist() == batch["input_ids"][i][real[i]].tolist()
        assert packed["labels"][where].tolist() == batch["labels"][i][real[i]].tolist()
        assert packed["position_ids"][where].tolist() == list(range(int(real[i].sum())))
    assert packed["pixel_values"].shape == batch["pixel_values"].shape


def test_packed_losses_equal_padded_losses(tiny_model, processor):
    batch = ChatCollator(processor)(EXAMPLES)
    packed = _pack(processor, batch, 64)
    with torch.no_grad():
        padded_answers, _ = answer_tokens(tiny_model, batch)
        packed_answers, _ = answer_tokens(tiny_model, packed)
    torch.testing.assert_close(mean_nll(packed_answers), mean_nll(padded_answers))
    # Per example, not per packed row: sequence-level methods (NPO, SimNPO) see each example.
    assert packed_answers.n_rows == len(EXAMPLES)
    torch.testing.assert_close(
        sequence_logprob(packed_answers), sequence_logprob(padded_answers), rtol=1e-5, atol=1e-4
    )


def test_swapped_images_change_the_packed_loss(tiny_model, processor):
    """The equality above would hold vacuously if images did not matter to this model."""
    batch = ChatCollator(processor)(EXAMPLES)
    packed = _pack(processor, batch, 64)
    swapped = dict(packed)
    swapped["pixel_values"] = packed["pixel_values"].flip(0)
    with torch.no_grad():
        right = sequence_logprob(answer_tokens(tiny_model, packed)[0])
        wrong = sequence_logprob(answer_tokens(tiny_model, swapped)[0])
    assert not torch.allclose(right, wrong, atol=1e-4)


def test_packing_refuses_other_layouts(processor, tiny_model):
    batch = ChatCollator(processor)(EXAMPLES[:2])
    with pytest.raises(ConfigError, match="image_grid_thw"):
        _pack(processor, {**batch, "image_grid_thw": torch.ones(1, 3)}, 64)
    left = dict(batch)
    left["attention_mask"] = batch["attention_mask"].flip(1)
    with pytest.raises(ModelError, match="right-padded"):
        _pack(processor, left, 64)
    check_packable(tiny_model)  # LLaVA: fine
    qwen_like = copy.copy(tiny_model)
    qwen_like.config = copy.copy(tiny_model.config)
    qwen_like.config.model_type = "qwen2_vl"
    with pytest.raises(ConfigError, match="qwen2_vl"):
        check_packable(qwen_like)


def test_packed_training_follows_padded_training(fresh_model, tiny_model, processor):
    """Same examples, same steps: the packed run's losses track the padded run's."""
    data = UnlearnData(forget=EXAMPLES * 2)

    def run(model, pack_tokens):
        cfg = LoopConfig(
            max_steps=4,
            batch_size=6,
            learning_rate=1e-3,
            logging_steps=1,
            report_to=(),
            progress=False,
            pack_tokens=pack_tokens,
        )
        result = train_method(model, processor, sft(), data, cfg)
        return [entry["loss"] for entry in result.history]

    padded = run(fresh_model, 0)
    packed = run(copy.deepcopy(tiny_model), 64)
    assert packed[-1] < packed[0]
    assert packed == pytest.approx(padded, rel=1e-3)
