"""The model-driven multiple-choice scorers on a tiny random LLaVA."""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import pytest
import torch

from pulse.data.schema import Modality
from pulse.errors import ConfigError
from pulse.eval import mcq
from pulse.eval.mcq import MCQConfig, letter_token_ids, score_mcq
from pulse.eval.prompts import item_prompt
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
    batched = score_mcq(model, processor, sample, MCQConfig(batch_size=7, scorer="letter"))
    single = score_mcq(model, processor, sample, MCQConfig(batch_size=1, scorer="letter"))
    assert [r.item_id for r in batched] == [i.id for i in sample]  # input order kept
    assert [r.prediction for r in batched] == [r.prediction for r in single]
    assert [r.correct for r in batched] == [r.correct for r in single]
    assert all(_close(a, b) for a, b in zip(_logprobs(batched), _logprobs(single), strict=True))


def test_letter_scores_match_an_unpadded_forward(tiny, sample):
    """The last-position logits of one unpadded prompt, softmax over the item's letters."""
    model, processor = tiny
    item = sample[0]
    record = score_mcq(model, processor, [item], MCQConfig(scorer="letter"))[0]
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
    with pytest.raises(ValueError, match="few-shot pool has 0 usable examples"):
        # the pool holds only the item's own entity: its answers are never shown
        score_mcq(model, processor, sample[:1], MCQConfig(scorer="mllmu"), pool=sample[:1])
    with pytest.raises(ValueError, match="multiple-choice items only"):
        score_mcq(model, processor, [replace(sample[0], kind="cloze")])
    assert score_mcq(model, processor, []) == []


def _forwards(model):
    """A forward hook recording, per call: rows, input length, whether image inputs came, whether
    a cache came in (a continuation) and what ``use_cache`` was."""
    seen = []

    def record(module, args, kwargs, output):
        ids = kwargs["input_ids"]
        seen.append(
            {
                "rows": ids.shape[0],
                "length": ids.shape[1],
                "pixels": kwargs.get("pixel_values") is not None,
                "continues": kwargs.get("past_key_values") is not None,
                "use_cache": kwargs.get("use_cache"),
                "cache": output.past_key_values,
            }
        )

    return seen, model.register_forward_hook(record, with_kwargs=True)


def test_letter_scorer_keeps_no_kv_cache(tiny, sample):
    """Nothing is generated after a letter-scoring forward: no KV cache is built (on a 7B model
    a batch of 32 image prompts would hold about 11 GB of it)."""
    model, processor = tiny
    seen, handle = _forwards(model)
    try:
        score_mcq(model, processor, sample[:4], MCQConfig(batch_size=2, scorer="letter"))
    finally:
        handle.remove()
    assert seen
    assert all(f["use_cache"] is False and f["cache"] is None for f in seen)


def _varied(items):
    """Items with 2, 3 and 4 options (the gold one kept), cycling, in input order."""
    out = []
    for k, item in enumerate(items):
        n = 2 + k % 3
        others = [letter for letter in sorted(item.options) if letter != item.answer]
        keep = sorted([item.answer, *others[: n - 1]])
        assert len(keep) == n
        out.append(replace(item, options={letter: item.options[letter] for letter in keep}))
    return out


def _assert_same_scores(a, b, tol=1e-4):
    assert [r.item_id for r in a] == [r.item_id for r in b]
    assert [r.prediction for r in a] == [r.prediction for r in b]
    assert [r.correct for r in a] == [r.correct for r in b]
    for x, y in zip(a, b, strict=True):
        assert _close(x.extras["mean_logprobs"], y.extras["mean_logprobs"], tol)
        assert _close(x.extras["logprobs"], y.extras["logprobs"], tol)


def test_option_text_shares_each_prompt_and_equals_the_per_row_path(tiny, sample):
    """One prompt forward per item (its image included), one continuation per batch over the
    options' tokens without image inputs; the scores are those of one full row per option.
    Items of 2, 3 and 4 options, both modalities, batches smaller than the item count."""
    model, processor = tiny
    items = _varied(sample[:12])
    assert {i.image is not None for i in items} == {True, False}
    per_row = mcq.score_options(
        model, processor, items, MCQConfig(batch_size=3), share_prompts=False
    )
    seen, handle = _forwards(model)
    try:
        cached = score_mcq(model, processor, items, MCQConfig(batch_size=7, scorer="option_text"))
    finally:
        handle.remove()
    _assert_same_scores(cached, per_row)
    prompts = [f for f in seen if not f["continues"]]
    continuations = [f for f in seen if f["continues"]]
    assert sum(f["rows"] for f in prompts) == len(items)
    assert all(f["use_cache"] for f in prompts)
    assert len(prompts) > 1  # batch_size 7 counts options: at most 3 items of 2 options
    # Every batch of 7 option rows or fewer; one continuation per prompt batch at most.
    assert sum(f["rows"] for f in continuations) <= sum(len(i.options) for i in items)
    assert continuations
    assert all(f["rows"] <= 7 and not f["pixels"] for f in continuations)
    assert any(f["pixels"] for f in prompts)


def test_option_text_per_row_path_keeps_no_kv_cache(tiny, sample):
    model, processor = tiny
    seen, handle = _forwards(model)
    try:
        mcq.score_options(
            model, processor, sample[:4], MCQConfig(batch_size=2), share_prompts=False
        )
    finally:
        handle.remove()
    assert seen
    assert all(f["use_cache"] is False and f["cache"] is None for f in seen)


def test_option_text_takes_the_per_row_path_where_a_token_straddles_the_prompts_end(tiny, sample):
    """A template ending in a space: ``"ASSISTANT: "`` + ``"Paris"`` tokenizes as
    ``":"``, ``" Paris"``, so the prompt's last token is not the full row's; such an item is
    scored one full row per option. Options that start with a space keep the boundary (``" "``,
    ``" Paris"``) and share their prompt."""
    model, processor = tiny
    spaced = copy.deepcopy(processor)
    spaced.chat_template = processor.chat_template.replace("'ASSISTANT:'", "'ASSISTANT: '")
    assert spaced.chat_template != processor.chat_template
    items = _varied(sample[:6])
    items[1] = replace(items[1], options={k: f" {v}" for k, v in items[1].options.items()})
    plan = mcq._option_rows(spaced, items)
    assert plan.shared == [i == 1 for i in range(len(items))]
    per_row = mcq.score_options(model, spaced, items, MCQConfig(batch_size=4), share_prompts=False)
    seen, handle = _forwards(model)
    try:
        mixed = mcq.score_options(model, spaced, items, MCQConfig(batch_size=4))
    finally:
        handle.remove()
    _assert_same_scores(mixed, per_row)
    whole_rows = [f for f in seen if f["use_cache"] is False]
    prompts = [f for f in seen if f["use_cache"] and not f["continues"]]
    assert sum(f["rows"] for f in prompts) == 1
    assert sum(f["rows"] for f in whole_rows) == sum(
        len(item.options) for i, item in enumerate(items) if i != 1
    )


def test_option_batches_count_options():
    """A prompt batch holds as many items as fit in ``batch_size`` options, at least one."""
    sizes = [4, 2, 3, 4, 1, 9]
    assert mcq._item_batches(range(6), sizes, 5) == [[0], [1, 2], [3, 4], [5]]
    assert mcq._item_batches([5, 0], sizes, 32) == [[5, 0]]
    assert mcq._item_batches(range(3), sizes, 1) == [[0], [1], [2]]
    with pytest.raises(ValueError, match="positive"):
        mcq._item_batches(range(3), sizes, 0)
