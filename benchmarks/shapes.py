"""Real-size model shapes with random weights, for the benchmarks (nothing is downloaded).

``build_shapes("llava-1.5-7b", texts, device="cuda", dtype="bfloat16")`` builds a
:class:`~transformers.LlavaForConditionalGeneration` with LLaVA-1.5-7B's shapes: a CLIP
ViT-L/14 vision tower at 336 px (24 layers, hidden 1024, 576 patch features from layer -2),
the two-layer GELU projector, and a 32-layer Llama with hidden 4096, MLP 11008, 32 heads and a
32064-token vocabulary; about 7.06B parameters. The weights are randomly initialised directly on
``device`` in ``dtype``; the shapes, not the values, set the cost of a forward or a step.

The tokenizer is the tiny models' byte-level BPE trained on ``texts`` (ids 0-4 special, a few
hundred to a thousand tokens; the model's 32064-row embedding covers it), and the processor
resizes to 336 px and expands ``<image>`` into 576 tokens, as LLaVA-1.5's does. Prompt lengths
in text tokens differ somewhat from Llama's tokenizer; image rows are dominated by the 576
image tokens either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Shape:
    """Language model (hidden, MLP, layers, heads) and vision tower (the same triple)."""

    text: tuple[int, int, int, int]
    vision: tuple[int, int, int, int] = (1024, 4096, 24, 16)  # CLIP ViT-L/14
    vocab: int = 32064
    image_size: int = 336
    patch_size: int = 14


# llava-hf/llava-1.5-{7b,13b}-hf.
SHAPES = {
    "llava-1.5-7b": Shape(text=(4096, 11008, 32, 32)),
    "llava-1.5-13b": Shape(text=(5120, 13824, 40, 40)),
}


def build_shapes(name: str, texts: Iterable[str], *, device: str = "cuda", dtype: str = "bfloat16"):
    """``(model, processor, image_size)`` for shapes ``name`` (see the module docstring)."""
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    from pulse.models.tiny import IMAGE, TinyModelConfig, build_processor, train_tokenizer

    if name not in SHAPES:
        raise ValueError(f"unknown shapes {name!r}: expected one of {', '.join(SHAPES)}")
    shape = SHAPES[name]
    (hidden, mlp, layers, heads), (v_hidden, v_mlp, v_layers, v_heads) = shape.text, shape.vision
    tokenizer = train_tokenizer(list(texts), 1024)
    # Only the processor's sizes are read from this: 336 px, patch 14 -> 576 image tokens.
    processor = build_processor(
        tokenizer, TinyModelConfig(image_size=shape.image_size, patch_size=shape.patch_size)
    )
    ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    vision = CLIPVisionConfig(
        hidden_size=v_hidden,
        intermediate_size=v_mlp,
        num_hidden_layers=v_layers,
        num_attention_heads=v_heads,
        image_size=shape.image_size,
        patch_size=shape.patch_size,
        projection_dim=768,
        hidden_act="quick_gelu",
    )
    llm = LlamaConfig(
        vocab_size=shape.vocab,
        hidden_size=hidden,
        intermediate_size=mlp,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        **ids,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=llm,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE),
        projector_hidden_act="gelu",
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        image_seq_length=(shape.image_size // shape.patch_size) ** 2,
        tie_word_embeddings=False,
        **ids,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = LlavaForConditionalGeneration._from_config(config, dtype=DTYPES[dtype])
    for key, value in ids.items():
        setattr(model.generation_config, key, value)
    return model.eval(), processor, shape.image_size
