"""Tiny random models of each supported family: forward, answer-only loss, one LoRA step on all
three components, adapter and merged save / reload.

Processors are built locally from the trained tiny tokenizer and each family's PIL image
processor. Qwen2-VL's processor cannot be built without torchvision (its video processor needs
it), so its inputs are built by hand from ``Qwen2VLImageProcessorPil`` and the tokenizer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    BatchFeature,
    Idefics3Config,
    Idefics3ForConditionalGeneration,
    Idefics3ImageProcessorPil,
    Idefics3Processor,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    LlavaNextImageProcessorPil,
    LlavaNextProcessor,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessorPil,
)

from pulse.models.adapters import (
    UpdateScope,
    apply_scope,
    find_components,
    save_adapter,
    save_merged,
    trainable_parameters,
)
from pulse.models.chat import IGNORE_INDEX, ChatCollator
from pulse.models.loading import load_model
from pulse.models.tiny import CHAT_TEMPLATE

TEXT = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "tie_word_embeddings": False,
}
VISION = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
}


@dataclass
class Family:
    model: Any
    processor: Any  # None when the processor cannot be built offline without torchvision
    collate: Any  # examples -> batch with labels
    paths: dict[str, str]


def _seeded(build, config):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build(config).eval()


def _llava(tiny) -> Family:
    model, processor = tiny
    return Family(
        copy.deepcopy(model),
        processor,
        ChatCollator(processor),
        {"llm": "language_model", "projector": "multi_modal_projector", "vision": "vision_tower"},
    )


def _llava_next(tokenizer) -> Family:
    pins = [[32, 32], [32, 64], [64, 32], [64, 64]]
    image_processor = LlavaNextImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, image_grid_pinpoints=pins
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    config = LlavaNextConfig(
        text_config={**TEXT, "vocab_size": len(tokenizer)},
        vision_config={**VISION, "model_type": "clip_vision_model"},
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=pins,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        tie_word_embeddings=False,
    )
    return Family(
        _seeded(LlavaNextForConditionalGeneration, config),
        processor,
        ChatCollator(processor),
        {"llm": "language_model", "projector": "multi_modal_projector", "vision": "vision_tower"},
    )


IDEFICS3_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def _idefics3(tokenizer) -> Family:
    tiles = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    tokenizer.add_special_tokens(
        {"extra_special_tokens": ["<|im_start|>", "<global-img>", *tiles]},
        replace_extra_special_tokens=False,
    )
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": 32}, max_image_size={"longest_edge": 32}, do_image_splitting=False
    )
    # (32 / 8)^2 patches merged by scale_factor^2 = 4 features per image.
    processor = Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=4,
        chat_template=IDEFICS3_TEMPLATE,
    )
    tokenizer.eos_token = "<end_of_utterance>"
    config = Idefics3Config(
        text_config={**TEXT, "vocab_size": len(tokenizer)},
        vision_config=VISION,
        scale_factor=2,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        tie_word_embeddings=False,
    )
    return Family(
        _seeded(Idefics3ForConditionalGeneration, config),
        processor,
        ChatCollator(processor),
        {"llm": "text_model", "projector": "connector", "vision": "vision_model"},
    )


QWEN_TOKENS = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>", "<|vision_end|>"]


def _qwen2_vl(tokenizer) -> Family:
    tokenizer.add_special_tokens(
        {"extra_special_tokens": [*QWEN_TOKENS, "<|video_pad|>"]},
        replace_extra_special_tokens=False,
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_TOKENS}
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=4, merge_size=2, temporal_patch_size=2, min_pixels=16 * 16, max_pixels=32 * 32
    )
    config = Qwen2VLConfig(
        text_config={
            **TEXT,
            "model_type": "qwen2_vl_text",
            "vocab_size": len(tokenizer),
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": tokenizer.pad_token_id,
            # head_dim 16: 8 rotary frequencies split over (time, height, width).
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1e4,
                "mrope_section": [2, 3, 3],
            },
        },
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": TEXT["hidden_size"],
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 4,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )

    def collate(examples) -> BatchFeature:
        """Qwen2-VL chat format by hand: image pads expanded to grid / merge^2 tokens."""
        rows, labels, pixels, grids = [], [], [], []
        for ex in examples:
            vision = ""
            if ex.image is not None:
                out = image_processor(images=[ex.image], return_tensors="pt")
                pixels.append(out["pixel_values"])
                grids.append(out["image_grid_thw"])
                n = int(out["image_grid_thw"].prod()) // 4
                vision = "<|vision_start|>" + "<|image_pad|>" * n + "<|vision_end|>"
            prompt = f"<|im_start|>user\n{vision}{ex.question}<|im_end|>\n<|im_start|>assistant\n"
            p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            a_ids = tokenizer(f"{ex.answer}<|im_end|>", add_special_tokens=False)["input_ids"]
            rows.append(p_ids + a_ids)
            labels.append([IGNORE_INDEX] * len(p_ids) + a_ids)
        width = max(map(len, rows))
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        batch = {
            "input_ids": input_ids,
            "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows]),
            "labels": torch.tensor([r + [IGNORE_INDEX] * (width - len(r)) for r in labels]),
            "mm_token_type_ids": (input_ids == ids["<|image_pad|>"]).int(),
        }
        if pixels:
            batch["pixel_values"] = torch.cat(pixels)
            batch["image_grid_thw"] = torch.cat(grids)
        return BatchFeature(batch)

    return Family(
        _seeded(Qwen2VLForConditionalGeneration, config),
        None,
        collate,
        {"llm": "language_model", "projector": "visual.merger", "vision": "visual"},
    )


BUILDERS = {"llava_next": _llava_next, "idefics3": _idefics3, "qwen2_vl": _qwen2_vl}


@pytest.fixture(params=["llava", "llava_next", "qwen2_vl", "idefics3"])
def family(request, tiny) -> Family:
    if request.param == "llava":
        return _llava(tiny)
    return BUILDERS[request.param](copy.deepcopy(tiny[1].tokenizer))


def _logits(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


def test_family_forward_lora_step_save_reload(family, examples, tmp_path):
    model = family.model
    assert {k: v.removeprefix("model.") for k, v in find_components(model).as_dict().items()} == (
        family.paths
    )
    batch = family.collate(examples)
    # Mixed batch: only answer tokens are labelled, and the loss is finite.
    assert (batch["labels"] != IGNORE_INDEX).sum() < batch["attention_mask"].sum() / 2
    out = model(**batch)
    assert out.logits.shape[:2] == batch["input_ids"].shape
    assert torch.isfinite(out.loss)

    model.save_pretrained(tmp_path / "base")
    if family.processor is not None:
        family.processor.save_pretrained(tmp_path / "base")
        reloaded = AutoProcessor.from_pretrained(tmp_path / "base")
        batch2 = ChatCollator(reloaded)(examples)
        assert all(torch.equal(batch[k], batch2[k]) for k in batch)

    scope = UpdateScope(llm="lora", projector="lora", vision="lora", rank=2)
    peft_model = apply_scope(model, scope)
    counts = trainable_parameters(peft_model)
    assert all(counts[c] > 0 for c in ("llm", "projector", "vision")) and counts["other"] == 0
    peft_model.train()
    for p in peft_model.parameters():  # LoRA B starts at zero: give it a value to move from
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.02)
    before = peft_model(**batch).loss
    before.backward()
    opt = torch.optim.SGD([p for p in peft_model.parameters() if p.requires_grad], lr=0.1)
    opt.step()
    peft_model.eval()
    adapted = _logits(peft_model, batch)
    assert not torch.equal(adapted, out.logits.detach())

    save_adapter(peft_model, tmp_path / "adapter")
    loaded = load_model(tmp_path / "base", adapter=tmp_path / "adapter")
    assert torch.equal(_logits(loaded, batch), adapted)

    merged = save_merged(peft_model, tmp_path / "merged")
    merged_logits = _logits(merged, batch)
    torch.testing.assert_close(merged_logits, adapted, atol=1e-4, rtol=1e-4)
    reloaded_merged = AutoModelForImageTextToText.from_pretrained(tmp_path / "merged").eval()
    assert type(reloaded_merged) is type(merged)
    assert torch.equal(_logits(reloaded_merged, batch), merged_logits)


def test_family_full_projector_with_vision_lora(family):
    """A fully trained projector inside the vision tower (Qwen2-VL's merger) gets no LoRA and
    counts as projector; the vision LoRA stays outside it."""
    projector = family.model.get_submodule(find_components(family.model).projector)
    size = sum(p.numel() for p in projector.parameters())
    model = apply_scope(family.model, UpdateScope(llm="frozen", projector="full", vision="lora"))
    counts = trainable_parameters(model)
    assert counts["projector"] == size and counts["vision"] > 0
    assert counts["llm"] == counts["other"] == 0
    lora = [n for n, _ in model.named_modules() if n.endswith(".lora_A")]
    assert lora and not any("merger" in n or "projector" in n or "connector" in n for n in lora)
