"""Encodings kept across model states: the same scores, the encoding work done once."""

from __future__ import annotations

import copy

import pytest
import torch

from pulse.data.mmbench import read_mmbench
from pulse.eval.encodings import EncodingCache, processor_fingerprint
from pulse.eval.mcq import MCQConfig, score_mcq
from pulse.eval.mmbench import evaluate_mmbench
from pulse.models.loading import load_model_and_processor


def _perturbed(model):
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return other


def _scores(records):
    return [(r.item_id, r.prediction, r.extras["logprobs"]) for r in records]


@pytest.mark.parametrize("scorer", ["option_text", "letter"])
def test_a_second_model_state_gets_the_scores_it_gets_without_the_cache(tiny, mcq_items, scorer):
    model, processor = tiny
    torch.manual_seed(0)
    states = [model, _perturbed(model)]
    items = mcq_items[:40]
    cfg = MCQConfig(batch_size=16, scorer=scorer)
    cache = EncodingCache()
    for state in states:
        cached = score_mcq(state, processor, items, cfg, cache=cache)
        assert _scores(cached) == _scores(score_mcq(state, processor, items, cfg))
    assert cache.hits > 0 and cache.stored_bytes > 0
    stored = cache.stored_bytes
    score_mcq(states[0], processor, items, cfg, cache=cache)
    assert cache.stored_bytes == stored  # nothing encoded again


def test_other_items_or_another_processor_are_not_served_from_the_cache(tiny, tiny_dir, mcq_items):
    model, processor = tiny
    cfg = MCQConfig(batch_size=16, scorer="option_text")
    cache = EncodingCache()
    score_mcq(model, processor, mcq_items[:20], cfg, cache=cache)
    hits = cache.hits
    score_mcq(model, processor, mcq_items[20:40], cfg, cache=cache)
    assert cache.hits == hits
    # The same checkpoint loaded again is the same processor: served from the cache.
    _, reloaded = load_model_and_processor(tiny_dir)
    assert processor_fingerprint(reloaded) == processor_fingerprint(processor)
    score_mcq(model, reloaded, mcq_items[:20], cfg, cache=cache)
    assert cache.hits > hits
    # One more token in the vocabulary changes how text encodes: a processor of its own.
    _, grown = load_model_and_processor(tiny_dir)
    grown.tokenizer.add_tokens(["zzqx"])
    assert processor_fingerprint(grown) != processor_fingerprint(processor)
    hits = cache.hits
    score_mcq(model, grown, mcq_items[:20], cfg, cache=cache)
    assert cache.hits == hits


def test_past_the_byte_budget_batches_are_encoded_again_with_the_same_scores(tiny, world):
    model, processor = tiny
    rows = read_mmbench(world / "mmbench" / "dev.tsv")[:24]
    cfg = MCQConfig(batch_size=8, scorer="option_text")
    cache = EncodingCache(max_bytes=40_000)
    first = evaluate_mmbench(model, processor, rows, cfg, cache=cache)
    second = evaluate_mmbench(model, processor, rows, cfg, cache=cache)
    assert first == second == evaluate_mmbench(model, processor, rows, cfg)
    assert 0 < cache.stored_bytes <= 40_000


def test_a_caller_moving_its_inputs_leaves_the_stored_ones_alone():
    from transformers import BatchFeature

    cache = EncodingCache()
    stored = BatchFeature({"pixel_values": torch.ones(2, 3)})
    got = cache.get("k", lambda: stored)
    got.to(torch.float64)  # replaces the tensors of its own mapping only
    assert got["pixel_values"].dtype == torch.float64
    again = cache.get("k", lambda: None)
    assert again["pixel_values"].dtype == torch.float32 and cache.hits == 1
