from __future__ import annotations

import copy

import pytest
import torch

from pulse.data.schema import TrainPair, encode_png
from pulse.errors import ModelError
from pulse.models.chat import (
    IGNORE_INDEX,
    ChatCollator,
    ChatExample,
    answer_mask,
    encode_prompts,
    format_prompt,
)


def _answer_ids(labels_row: torch.Tensor) -> list[int]:
    return labels_row[labels_row != IGNORE_INDEX].tolist()


def test_prompt_from_chat_template_is_llava_format(processor):
    assert (
        format_prompt(processor, "Who is this?", True) == "USER: <image>\nWho is this? ASSISTANT:"
    )
    assert format_prompt(processor, "Who is Bob?", False) == "USER: Who is Bob? ASSISTANT:"


def test_prompt_falls_back_to_llava_format_without_template(processor):
    bare = copy.deepcopy(processor)
    bare.chat_template = None
    bare.tokenizer.chat_template = None
    assert format_prompt(bare, "Q?", True) == format_prompt(processor, "Q?", True)
    assert format_prompt(bare, "Q?", False) == format_prompt(processor, "Q?", False)


def test_labels_are_answer_and_eos_only(processor, examples):
    batch = ChatCollator(processor)(examples)
    tok = processor.tokenizer
    for row, example in enumerate(examples):
        ids = _answer_ids(batch["labels"][row])
        assert tok.decode(ids) == f" {example.answer}</s>"
        assert ids[-1] == tok.eos_token_id
    # Nothing else is counted: no image placeholder, prompt or padding position.
    mask = answer_mask(batch["labels"])
    image_id = tok.convert_tokens_to_ids("<image>")
    assert not mask[batch["input_ids"] == image_id].any()
    assert not mask[batch["attention_mask"] == 0].any()


def test_label_boundary_is_the_prompt_length_in_the_full_sequence(processor, examples):
    """The first answer position equals the processor's length of the prompt alone (with the
    image expanded), and the answer's tokens are the same as tokenized after the prompt."""
    collator = ChatCollator(processor)
    batch = collator(examples)
    prompts = encode_prompts(processor, examples)
    prompt_lengths = prompts["attention_mask"].sum(dim=1).tolist()
    tok = processor.tokenizer
    for row, example in enumerate(examples):
        labels = batch["labels"][row]
        first = int((labels != IGNORE_INDEX).nonzero()[0])
        assert first == prompt_lengths[row]
        prompt = format_prompt(processor, example.question, example.image is not None)
        after_prompt = tok(prompt + f" {example.answer}</s>")["input_ids"][
            len(tok(prompt)["input_ids"]) :
        ]
        alone = tok(f" {example.answer}</s>", add_special_tokens=False)["input_ids"]
        assert _answer_ids(labels) == after_prompt == alone


def test_mixed_image_and_text_batch(tiny, examples):
    model, processor = tiny
    batch = ChatCollator(processor)(examples)
    n_images = sum(e.image is not None for e in examples)
    assert batch["pixel_values"].shape[0] == n_images
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    with torch.no_grad():
        loss = model(**batch).loss
    assert torch.isfinite(loss)


def test_text_only_batch_has_no_pixels(tiny, examples):
    model, processor = tiny
    batch = ChatCollator(processor)([e for e in examples if e.image is None])
    assert "pixel_values" not in batch
    with torch.no_grad():
        assert torch.isfinite(model(**batch).loss)


def test_batch_loss_equals_mean_over_answer_tokens(tiny, examples):
    model, processor = tiny
    batch = ChatCollator(processor)(examples)
    with torch.no_grad():
        out = model(**batch)
    logits, labels = out.logits[:, :-1], batch["labels"][:, 1:]
    mask = labels != IGNORE_INDEX
    nll = torch.nn.functional.cross_entropy(logits[mask], labels[mask])
    torch.testing.assert_close(out.loss, nll)


def test_eos_as_padding_keeps_the_eos_label(processor, examples):
    eos_padded = copy.deepcopy(processor)
    eos_padded.tokenizer.pad_token = None  # the collator falls back to EOS as padding
    collator = ChatCollator(eos_padded)
    assert collator.tokenizer.pad_token_id == collator.tokenizer.eos_token_id
    batch = collator(examples)
    for row, example in enumerate(examples):
        assert eos_padded.tokenizer.decode(_answer_ids(batch["labels"][row])) == (
            f" {example.answer}</s>"
        )


def test_accepts_train_pairs_with_image_bytes(processor, examples):
    pair = TrainPair("e1", examples[0].question, examples[0].answer, encode_png(examples[0].image))
    as_pair = ChatCollator(processor)([pair, {"question": "Q?", "answer": "A"}])
    as_example = ChatCollator(processor)([examples[0], ChatExample("Q?", "A")])
    assert all(torch.equal(as_pair[k], as_example[k]) for k in as_example)


def test_empty_batch_and_stray_placeholder_are_errors(processor):
    with pytest.raises(ModelError):
        ChatCollator(processor)([])
    with pytest.raises(ModelError):
        encode_prompts(processor, [])
    with pytest.raises(ModelError, match=r"example 1: .*'<image>'"):
        ChatCollator(processor)([ChatExample("Q?", "A"), ChatExample("What is <image>?", "A")])


def test_prompts_are_left_padded_and_score_like_single_rows(tiny, examples):
    model, processor = tiny
    batch = encode_prompts(processor, examples)
    mask = batch["attention_mask"]
    assert mask[:, -1].all() and not mask[:, 0].all()  # left padding
    colon = processor.tokenizer.convert_tokens_to_ids(":")
    assert (batch["input_ids"][:, -1] == colon).all()  # every row ends at "ASSISTANT:"
    with torch.no_grad():
        last = model(**batch).logits[:, -1]
        for row, example in enumerate(examples):
            single = model(**encode_prompts(processor, [example])).logits[0, -1]
            torch.testing.assert_close(last[row], single, atol=1e-5, rtol=1e-5)


def test_example_lengths_are_the_collated_lengths(processor, examples):
    from pulse.models.chat import example_lengths

    lengths = example_lengths(processor, examples)
    collator = ChatCollator(processor)
    assert lengths == [collator([e])["input_ids"].shape[1] for e in examples]
    assert lengths[0] > lengths[1]  # the image expands into its placeholder tokens


def test_batched_token_ids_equal_one_call_per_text(processor):
    collator = ChatCollator(processor)
    tokenizer = collator.tokenizer
    texts = ["USER: Who? ASSISTANT: Alice", f"{tokenizer.bos_token}USER: Hi ASSISTANT:", "x y"]
    expected = [
        tokenizer(t, add_special_tokens=not t.startswith(tokenizer.bos_token))["input_ids"]
        for t in texts
    ]
    assert collator.token_ids(texts) == expected
    assert expected[0][0] == tokenizer.bos_token_id and expected[1].count(expected[0][0]) == 1
    with pytest.raises(ModelError, match="'<image>'"):
        collator.full_text("USER: Q? ASSISTANT:", "an <image> answer")


def test_collator_pickles_and_collates_the_same(processor, examples):
    import pickle

    collator = ChatCollator(processor)
    first = collator(examples)
    again = pickle.loads(pickle.dumps(collator))(examples)
    assert torch.equal(first["input_ids"], again["input_ids"])
    assert torch.equal(first["labels"], again["labels"])
