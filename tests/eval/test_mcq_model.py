"""The model-driven multiple-choice scorers on a tiny random LLaVA."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from pulse.data.schema import Modality
from pulse.errors import ConfigError
from pulse.eval.mcq import MCQConfig, item_prompt, letter_token_ids, score_mcq
from pulse.models.chat import ChatCollator, ChatExample, answer_mask, encode_prompts


@pytest.fixture(scope="module")
def sample(mcq_items):
    """Items of three people, both modalities, different prompt lengths."""
    people = sorted({i.entity_id for i in mcq_items})[:3]
    chosen = [i for i in mcq_items if i.entity_id in people]
    assert {i.modality for i in chosen} == {Modality.MULTIMODAL, Modality.TEXT}
    return chosen


def _logprobs(records):
    return [r.extras["logprobs"] for r in records]


def _close(a, b, tol=1e-4):
    assert a.keys() == b.keys()
    return all(abs(a[k] - b[k]) < tol for k in a)


def test_letter_scores_batched_equal_per_sample(tiny, sample):
    model, processor = tiny
    batched = score_mcq(model, processor, sample, MCQConfig(batch_size=7))
    single = score_mcq(model, processor, sample, MCQConfig(batch_size=1))
    assert [r.item_id for r in batched] == [i.id for i in sample]  # input order kept
    assert [r.prediction for r in batched] == [r.prediction for r in single]
    assert [r.correct for r in batched] == [r.correct for r in single]
    assert all(_close(a, b) for a, b in zip(_logprobs(batched), _logprobs(single), strict=True))


def test_letter_scores_match_an_unpadded_forward(tiny, sample):
    """The last-position logits of one unpadded prompt, softmax over the item's letters."""
    model, processor = tiny
    item = sample[0]
    record = score_mcq(model, processor, [item])[0]
    ids = letter_token_ids(processor, sorted(item.options))
    with torch.inference_mode():
        inputs = encode_prompts(processor, [ChatExample(item_prompt(item), image=item.image)])
        logits = model(**inputs).logits[0, -1]
    picked = torch.stack([logits[ids[letter]] for letter in sorted(item.options)])
    expected = dict(zip(sorted(item.options), torch.log_softmax(picked, 0).tolist(), strict=True))
    assert _close(record.extras["logprobs"], expected)
    assert record.prediction == max(expected, key=expected.get)


def test_overlapped_encoding_changes_nothing(tiny, sample):
    model, processor = tiny
    plain = score_mcq(model, processor, sample, MCQConfig(batch_size=4, overlap=False))
    ahead = score_mcq(model, processor, sample, MCQConfig(batch_size=4, overlap=True))
    assert [r.to_dict() for r in plain] == [r.to_dict() for r in ahead]


def test_option_text_scores_batched_equal_per_sample(tiny, sample):
    model, processor = tiny
    items = sample[:8]
    batched = score_mcq(model, processor, items, MCQConfig(batch_size=9, scorer="option_text"))
    single = score_mcq(model, processor, items, MCQConfig(batch_size=1, scorer="option_text"))
    assert [r.prediction for r in batched] == [r.prediction for r in single]
    for a, b in zip(batched, single, strict=True):
        assert _close(a.extras["mean_logprobs"], b.extras["mean_logprobs"])
        probs = a.extras["logprobs"]
        assert math.isclose(sum(math.exp(v) for v in probs.values()), 1.0, rel_tol=1e-6)
        best = max(a.extras["mean_logprobs"], key=a.extras["mean_logprobs"].get)
        assert a.prediction == best
        assert a.correct == (a.prediction == a.gold)


def test_option_text_equals_the_training_collators_answer_mask(tiny, sample):
    """Independent reference: a right-padded training batch of prompt + option (no EOS), full
    logits, mean log-prob over the label positions."""
    model, processor = tiny
    item = next(i for i in sample if i.image is not None)
    record = score_mcq(model, processor, [item], MCQConfig(scorer="option_text"))[0]
    letters = sorted(item.options)
    batch = ChatCollator(processor, add_eos=False)(
        [ChatExample(item_prompt(item), item.options[k], item.image) for k in letters]
    )
    labels = batch.pop("labels")
    with torch.inference_mode():
        logp = torch.log_softmax(model(**batch).logits[:, :-1].float(), -1)
    mask = answer_mask(labels)[:, 1:]
    targets = labels[:, 1:].clamp(min=0).unsqueeze(-1)
    token_lp = logp.gather(-1, targets).squeeze(-1) * mask
    expected = dict(zip(letters, (token_lp.sum(1) / mask.sum(1)).tolist(), strict=True))
    assert _close(record.extras["mean_logprobs"], expected)


def test_scorer_names_and_the_mllmu_pool(tiny, sample, mcq_items):
    model, processor = tiny
    with pytest.raises(ConfigError, match="unknown MCQ scorer 'best'"):
        score_mcq(model, processor, sample, MCQConfig(scorer="best"))
    with pytest.raises(ConfigError, match="few-shot pool"):
        score_mcq(model, processor, sample, MCQConfig(scorer="mllmu"))
    with pytest.raises(ValueError, match="shares entities"):
        score_mcq(model, processor, sample, MCQConfig(scorer="mllmu"), pool=sample[:1])
    with pytest.raises(ValueError, match="multiple-choice items only"):
        score_mcq(model, processor, [replace(sample[0], kind="cloze")])
    assert score_mcq(model, processor, []) == []


@pytest.mark.parametrize("scorer", ["letter", "option_text"])
def test_scorers_keep_no_kv_cache(tiny, sample, scorer):
    """Nothing is generated after a scoring forward: no KV cache is built (on a 7B model a
    batch of 32 image prompts would hold about 11 GB of it)."""
    model, processor = tiny
    seen = []

    def record(module, args, kwargs, output):
        seen.append((kwargs.get("use_cache"), output.past_key_values))

    handle = model.register_forward_hook(record, with_kwargs=True)
    try:
        score_mcq(model, processor, sample[:4], MCQConfig(batch_size=2, scorer=scorer))
    finally:
        handle.remove()
    assert seen
    assert all(use_cache is False and cache is None for use_cache, cache in seen)
