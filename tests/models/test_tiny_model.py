from __future__ import annotations

import torch
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    CLIPImageProcessorPil,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

from pulse.models.chat import ChatCollator
from pulse.models.tiny import SPECIAL_TOKENS, TinyModelConfig, build_tiny_lmm, train_tokenizer


def test_default_size_is_about_one_million_parameters(corpus):
    model, processor = build_tiny_lmm(corpus, TinyModelConfig(), seed=0)
    n = sum(p.numel() for p in model.parameters())
    assert 500_000 < n < 2_000_000
    assert model.config.text_config.vocab_size == len(processor.tokenizer)


def test_vocab_is_sized_from_the_trained_tokenizer(tiny, tiny_config):
    model, processor = tiny
    assert len(processor.tokenizer) <= tiny_config.vocab_size
    assert model.config.text_config.vocab_size == len(processor.tokenizer)
    assert model.get_input_embeddings().weight.shape[0] == len(processor.tokenizer)


def test_tokenizer_special_tokens_and_round_trip(processor):
    tok = processor.tokenizer
    assert [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    ids = tok("USER: <image>\nWho? ASSISTANT: Zoë Ünal</s>")["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert ids.count(tok.convert_tokens_to_ids("<image>")) == 1
    # Byte-level: unseen characters encode without <unk> and decode back.
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == "USER: \nWho? ASSISTANT: Zoë Ünal"


def test_tokenizer_training_is_deterministic(corpus):
    a, b = train_tokenizer(corpus, 400), train_tokenizer(corpus, 400)
    assert a.get_vocab() == b.get_vocab()


def test_build_is_deterministic_given_the_seed(corpus, tiny_model, tiny_config):
    same, _ = build_tiny_lmm(corpus, tiny_config, seed=0)
    other, _ = build_tiny_lmm(corpus, tiny_config, seed=1)
    ref = tiny_model.state_dict()
    assert all(torch.equal(ref[k], v) for k, v in same.state_dict().items())
    assert not all(torch.equal(ref[k], v) for k, v in other.state_dict().items())


def test_image_placeholders_match_image_features(tiny, tiny_config, examples):
    model, processor = tiny
    batch = ChatCollator(processor)(examples)
    image_id = model.config.image_token_id
    per_row = (batch["input_ids"] == image_id).sum(dim=1).tolist()
    assert per_row == [tiny_config.image_tokens, 0, tiny_config.image_tokens, 0]
    with torch.no_grad():
        feats = model.model.get_image_features(pixel_values=batch["pixel_values"])
    feats = feats.pooler_output if hasattr(feats, "pooler_output") else feats
    n_feats = sum(f.shape[0] for f in feats) if isinstance(feats, list | tuple) else None
    n_feats = n_feats or feats.shape[0] * feats.shape[1]
    assert n_feats == sum(per_row)


def test_cls_feature_is_one_more_image_token_and_the_loss_runs(corpus, tiny_config, examples):
    from dataclasses import replace

    cfg = replace(tiny_config, feature_select="full")
    model, processor = build_tiny_lmm(corpus, cfg, seed=0)
    assert cfg.image_tokens == tiny_config.image_tokens + 1
    batch = ChatCollator(processor)(examples)
    per_row = (batch["input_ids"] == model.config.image_token_id).sum(dim=1).tolist()
    assert per_row == [cfg.image_tokens, 0, cfg.image_tokens, 0]
    loss = model(**batch).loss
    assert torch.isfinite(loss)


def test_save_reloads_with_auto_classes(tiny, tiny_dir, examples):
    model, processor = tiny
    loaded = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    loaded_processor = AutoProcessor.from_pretrained(tiny_dir)
    assert isinstance(loaded, LlavaForConditionalGeneration)
    assert isinstance(loaded_processor, LlavaProcessor)
    assert isinstance(loaded_processor.image_processor, CLIPImageProcessorPil)
    assert loaded_processor.chat_template == processor.chat_template
    batch = ChatCollator(processor)(examples)
    batch2 = ChatCollator(loaded_processor)(examples)
    assert all(torch.equal(batch[k], batch2[k]) for k in batch)
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, loaded.eval()(**batch2).logits)
