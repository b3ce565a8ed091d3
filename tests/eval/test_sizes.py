"""What one item and one batch may cost: batches bounded in padded tokens by the batch size,
whatever the longest text; the context and the image's tokens as the model counts them."""

from __future__ import annotations

import random

import pytest

from pulse.eval.sizes import ROW_TOKENS, context_length, image_overhead, token_batches


def test_a_batch_holds_at_most_its_rows_and_its_token_budget():
    rng = random.Random(0)
    lengths = sorted(rng.choice([20, 80, 300, 3000, 9000]) for _ in range(400))
    order = list(range(len(lengths)))
    for rows in (1, 4, 32):
        batches = token_batches(order, lengths, rows)
        assert [i for b in batches for i in b] == order  # every entry once, in order
        for batch in batches:
            assert len(batch) <= rows
            padded = len(batch) * max(lengths[i] for i in batch)
            assert padded <= rows * ROW_TOKENS or len(batch) == 1
    # Short rows fill whole batches, as the row count alone would (results unchanged).
    assert token_batches(range(10), [50] * 10, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_weighted_entries_count_their_rows():
    sizes = [4, 4, 2, 4]
    assert token_batches(range(4), [10] * 4, 8, weights=sizes) == [[0, 1], [2, 3]]
    long = [10, 10, 10, 1500]
    assert token_batches(range(4), long, 8, weights=sizes) == [[0, 1], [2], [3]]
    with pytest.raises(ValueError):
        token_batches(range(2), [1, 1], 0)


def test_context_and_image_tokens_of_the_tiny_model(tiny_models):
    from pulse.models.loading import load_model_and_processor

    model, processor = load_model_and_processor(tiny_models / "finetuned")
    assert context_length(model) == model.config.text_config.max_position_embeddings
    # the image's expanded tokens (as the processor writes them), plus at most the line it
    # stands on
    from PIL import Image

    from pulse.models.chat import ChatExample, encode_prompts

    ids = encode_prompts(processor, [ChatExample("?", image=Image.new("RGB", (32, 32)))])
    expanded = int((ids["input_ids"] == model.config.image_token_id).sum())
    assert expanded > 0
    assert expanded <= image_overhead(processor) <= expanded + 2
