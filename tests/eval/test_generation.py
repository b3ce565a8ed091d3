"""Batched greedy generation and the scorers built on it, on a tiny random LLaVA."""

from __future__ import annotations

import pytest
import torch

from pulse.data.schema import ItemKind, Modality
from pulse.eval.extract import explain_choice, mllmu_verdict
from pulse.eval.generation import (
    GenConfig,
    generate_mcq,
    generate_texts,
    mllmu_mcq,
    mllmu_prompts,
    score_cloze,
    score_generation,
)
from pulse.eval.mcq import MCQConfig, score_mcq
from pulse.eval.text_metrics import cloze_verdict, rouge_f1
from pulse.models.chat import ChatExample, encode_prompts

SHORT = GenConfig(batch_size=4, max_new_tokens=6)


@pytest.fixture(scope="module")
def examples(mcq_items):
    """Mixed image / text-only prompts of different lengths."""
    chosen = mcq_items[:3] + mcq_items[-3:]
    assert {i.modality for i in chosen} == {Modality.MULTIMODAL, Modality.TEXT}
    return [ChatExample(i.question + " " * k, image=i.image) for k, i in enumerate(chosen)]


def test_batched_generation_equals_per_sample_and_repeats(tiny, examples):
    model, processor = tiny
    batched = generate_texts(model, processor, examples, SHORT)
    again = generate_texts(model, processor, examples, SHORT)
    single = generate_texts(model, processor, examples, GenConfig(batch_size=1, max_new_tokens=6))
    assert batched == again == single
    assert len(batched) == len(examples) and all(isinstance(t, str) for t in batched)


def test_generation_returns_only_the_new_tokens_in_input_order(tiny, examples):
    model, processor = tiny
    tokenizer = processor.tokenizer
    texts = generate_texts(model, processor, examples[::-1], SHORT)
    for example, text in zip(examples[::-1], texts, strict=True):
        inputs = encode_prompts(processor, [example])
        with torch.inference_mode():
            out = model.generate(**inputs, do_sample=False, max_new_tokens=6)
        new = out[0, inputs["input_ids"].shape[1] :]
        assert text == tokenizer.decode(new, skip_special_tokens=True).strip()


def test_generation_config_is_checked(tiny, examples):
    model, processor = tiny
    assert generate_texts(model, processor, [], SHORT) == []
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate_texts(model, processor, examples, GenConfig(max_new_tokens=0))


def test_generate_scorer_extracts_from_its_response(tiny, mcq_items):
    model, processor = tiny
    items = mcq_items[:6]
    records = generate_mcq(model, processor, items, SHORT)
    via_name = score_mcq(model, processor, items, MCQConfig(scorer="generate", max_new_tokens=6))
    assert [r.to_dict() for r in records] == [r.to_dict() for r in via_name]
    for item, record in zip(items, records, strict=True):
        found = explain_choice(record.extras["response"], item.options)
        assert (record.prediction, record.extras["rule"]) == (found.letter, found.rule)
        assert record.correct == (found.letter == item.answer)


def test_mllmu_scorer_uses_the_published_verdict(tiny, mcq_items):
    model, processor = tiny
    people = sorted({i.entity_id for i in mcq_items})
    items = [i for i in mcq_items if i.entity_id == people[0]]
    pool = [i for i in mcq_items if i.entity_id != people[0]]
    records = mllmu_mcq(model, processor, items, pool, SHORT, seed=3)
    # The few-shot draw is seeded: the same seed gives the same prompts, hence the same records.
    assert [r.to_dict() for r in records] == [
        r.to_dict() for r in mllmu_mcq(model, processor, items, pool[::-1], SHORT, seed=3)
    ]
    for item, record in zip(items, records, strict=True):
        response = record.extras["response"]
        assert record.correct == mllmu_verdict(response, item.answer)
        head = response[:1].upper()
        assert record.prediction == (head if head in item.options else None)


def test_an_items_mllmu_prompt_does_not_depend_on_what_else_is_scored(mcq_items):
    """Scored alone, with the whole set, or with a pool holding its own person: the same prompt,
    never an example of its own person."""
    people = {i.entity_id: i for i in mcq_items}
    everything = mllmu_prompts(mcq_items, mcq_items, seed=5)
    for index in (0, len(mcq_items) // 2, len(mcq_items) - 1):
        item = mcq_items[index]
        assert mllmu_prompts([item], mcq_items, seed=5) == [everything[index]]
        others = [p for p in mcq_items if p.entity_id != item.entity_id]
        # the same as from a pool without its own person: none of theirs was drawn
        assert mllmu_prompts([item], others, seed=5) == [everything[index]]
    assert len(people) > 1


def test_cloze_and_generation_scores(tiny, full_items):
    model, processor = tiny
    cloze = [i for i in full_items if i.kind is ItemKind.CLOZE][:4]
    gen = [i for i in full_items if i.kind is ItemKind.GENERATION][:2]
    for item, record in zip(cloze, score_cloze(model, processor, cloze, SHORT), strict=True):
        assert record.correct == cloze_verdict(record.prediction, item.answer)
        assert record.gold == item.answer
    for item, record in zip(gen, score_generation(model, processor, gen, SHORT), strict=True):
        rouge = rouge_f1(record.prediction, item.answer)
        assert record.score == rouge["rougeL"]
        assert {k: record.extras[k] for k in rouge} == rouge
    with pytest.raises(ValueError, match="cloze items only"):
        score_cloze(model, processor, gen, SHORT)
