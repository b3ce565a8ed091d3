"""Examples encoded once give the collator's batches, in any order and mix."""

from __future__ import annotations

import torch

from pulse.methods.batches import UnlearnCollator, UnlearnData
from pulse.models.chat import ChatCollator
from pulse.models.encoded import EncodedExamples
from tests.fixtures.tiny import MIXED_EXAMPLES as EXAMPLES

BATCHES = [[0, 1, 2], [3, 4, 5, 0], [5, 2], [1, 3], [4, 0, 2, 1, 5, 3]]


def _same(a, b) -> None:
    assert set(a.keys()) == set(b.keys())
    for key in a:
        assert torch.equal(a[key], b[key]), key


class _Counting:
    """The collator, recording which examples each call encodes."""

    def __init__(self, chat, calls):
        self.chat, self.calls = chat, calls
        self.tokenizer, self.image_token_id = chat.tokenizer, chat.image_token_id

    def __call__(self, examples):
        self.calls.append([EXAMPLES.index(e) for e in examples])
        return self.chat(examples)


def test_batches_equal_the_collators_and_each_example_is_encoded_once(processor):
    chat = ChatCollator(processor)
    calls: list[list[int]] = []
    encoded = EncodedExamples(_Counting(chat, calls), EXAMPLES)
    for indices in BATCHES * 2:
        _same(encoded.batch(indices), chat([EXAMPLES[i] for i in indices]))
    assert encoded.splittable is True
    assert len(encoded) == len(EXAMPLES)
    # new examples of a batch are encoded together, once: here in the first two batches only
    assert calls == [[0, 1, 2], [3, 4, 5]]


def test_past_the_byte_budget_examples_are_encoded_per_batch(processor):
    chat = ChatCollator(processor)
    encoded = EncodedExamples(chat, EXAMPLES, budget=13_000)  # about one 32 px image
    for indices in BATCHES:
        _same(encoded.batch(indices), chat([EXAMPLES[i] for i in indices]))
    assert 0 < len(encoded) < len(EXAMPLES)
    assert encoded.stored_bytes <= 13_000


class _ExtraKey(ChatCollator):
    """A layout that does not split into rows (as LLaVA-NeXT's ``image_sizes``)."""

    def __call__(self, examples):
        batch = super().__call__(examples)
        batch["image_sizes"] = torch.tensor([[32, 32]] * len(examples))
        return batch


def test_a_layout_with_other_keys_is_collated_afresh(processor):
    chat = _ExtraKey(processor)
    encoded = EncodedExamples(chat, EXAMPLES)
    for indices in BATCHES:
        _same(encoded.batch(indices), chat([EXAMPLES[i] for i in indices]))
    assert encoded.splittable is False
    assert len(encoded) == 0


def test_unlearn_collator_batches_are_unchanged_by_the_encoding(processor):
    data = UnlearnData(forget=EXAMPLES[:4], retain=EXAMPLES[2:], seed=3)
    uses = {"forget", "idk", "retain"}
    cached = UnlearnCollator(processor, data, uses, seed=0, pack_tokens=64)
    # The reference keeps nothing: every batch straight from the chat collator.
    fresh = UnlearnCollator(processor, data, uses, seed=0, pack_tokens=64, encoding_cache_bytes=0)
    for indices in ([0, 1], [2, 3], [3, 0], [1, 2]) * 2:
        a, b = cached(indices), fresh(indices)
        for key in ("forget", "idk", "retain"):
            _same(a[key], b[key])
        assert torch.equal(a["retain_index"], b["retain_index"])
    assert len(cached._encoded["forget"]) == 4
    assert all(len(e) == 0 for e in fresh._encoded.values())
    stored = sum(e.stored_bytes for e in cached._encoded.values())
    assert cached.encoding_budget.used == stored > 0  # one bound for every source


def test_the_sources_of_a_request_share_one_byte_budget(processor):
    data = UnlearnData(forget=EXAMPLES[:4], retain=EXAMPLES[2:], seed=3)
    collator = UnlearnCollator(
        processor, data, {"forget", "retain"}, seed=0, encoding_cache_bytes=30_000
    )
    for indices in ([0, 1], [2, 3]) * 2:
        collator(indices)
    assert collator.encoding_budget.used <= 30_000
    kept = sum(len(e) for e in collator._encoded.values())
    assert 0 < kept < 8  # 8 examples (5 with an image, 12 KiB each) do not all fit
