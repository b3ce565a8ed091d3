"""Build the tiny LLaVA-architecture model of the embedded default, entirely locally.

A byte-level BPE tokenizer is trained on the world's own corpus, the image processor and the
:class:`~transformers.LlavaProcessor` are configured to match the model, and the model is a real
:class:`~transformers.LlavaForConditionalGeneration` (CLIP vision tower + Llama text model) with
random weights. Saved with ``save_pretrained`` it reloads through ``AutoModelForImageTextToText`` /
``AutoProcessor``, so the tiny model and llava-1.5-13b go through the same code path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

PAD, BOS, EOS, UNK, IMAGE = "<pad>", "<s>", "</s>", "<unk>", "<image>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK, IMAGE)

# The llava-hf LLaVA-1.5 template: "USER: <image>\n{question} ASSISTANT:" (text-only:
# "USER: {question} ASSISTANT:"); the answer follows after a space and ends with </s>, with
# nothing between them: a conversation renders exactly the text the model is trained on
# ("USER: {question} ASSISTANT: {answer}</s>"; pulse.models.template checks it).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% set reply = message['role'] == 'assistant' %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% if not reply %}{{ ' ' }}{% endif %}{% else %}"
    "{% for part in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for part in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ part['text'] }}{% if not reply or not loop.last %}{{ ' ' }}{% endif %}{% endfor %}"
    "{% endif %}"
    "{% if reply %}{{ '</s>' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyModelConfig:
    """Sizes of the tiny LMM (about 1M parameters at the defaults)."""

    vocab_size: int = 1024  # asked of the tokenizer trainer; the model uses len(tokenizer)
    image_size: int = 32
    patch_size: int = 8
    vision_hidden: int = 64
    vision_intermediate: int = 128
    vision_layers: int = 2
    vision_heads: int = 2
    text_hidden: int = 128
    text_intermediate: int = 256
    text_layers: int = 4
    text_heads: int = 4
    max_positions: int = 512
    # "full" keeps CLIP's CLS feature beside the patches: one token that summarises the whole
    # picture, where a small language model finds a face's identity far more easily than by
    # pooling patches itself; "default" drops it, as LLaVA-1.5 does.
    feature_select: str = "default"

    @property
    def image_tokens(self) -> int:
        """<image> tokens per image: one per patch, plus the CLS feature under "full"."""
        return (self.image_size // self.patch_size) ** 2 + (self.feature_select == "full")


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 1024, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts``: any string encodes, no <unk> in practice.

    Special tokens take ids 0-4 (``<pad> <s> </s> <unk> <image>``); ``<s>`` is prepended on
    encoding, like LLaVA-1.5's Llama tokenizer. Deterministic for the same texts in the same order.
    """
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tok.token_to_id(BOS))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        extra_special_tokens=[IMAGE],
        image_token=IMAGE,
        model_input_names=["input_ids", "attention_mask"],
        clean_up_tokenization_spaces=False,
        chat_template=CHAT_TEMPLATE,
    )


def build_processor(tokenizer: PreTrainedTokenizerFast, cfg: TinyModelConfig) -> LlavaProcessor:
    """A LlavaProcessor whose <image> expansion matches the model's number of image features."""
    side = cfg.image_size
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": side}, crop_size={"height": side, "width": side}
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=cfg.patch_size,
        # CLIP adds a CLS feature; the "default" strategy drops it, "full" keeps it.
        num_additional_image_tokens=1,
        vision_feature_select_strategy=cfg.feature_select,
        chat_template=CHAT_TEMPLATE,
        image_token=IMAGE,
    )


def build_config(tokenizer: PreTrainedTokenizerFast, cfg: TinyModelConfig) -> LlavaConfig:
    ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    vision = CLIPVisionConfig(
        hidden_size=cfg.vision_hidden,
        intermediate_size=cfg.vision_intermediate,
        num_hidden_layers=cfg.vision_layers,
        num_attention_heads=cfg.vision_heads,
        image_size=cfg.image_size,
        patch_size=cfg.patch_size,
        projection_dim=cfg.vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),  # a trained tokenizer may stop below the size asked
        hidden_size=cfg.text_hidden,
        intermediate_size=cfg.text_intermediate,
        num_hidden_layers=cfg.text_layers,
        num_attention_heads=cfg.text_heads,
        num_key_value_heads=cfg.text_heads,
        max_position_embeddings=cfg.max_positions,
        tie_word_embeddings=False,
        **ids,
    )
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE),
        # The last layer's patch features (LLaVA-1.5 uses -2 of 24 layers; with 2 layers, -2
        # would leave half the tower unused). Its post_layernorm then gets no gradient.
        vision_feature_layer=-1,
        vision_feature_select_strategy=cfg.feature_select,
        image_seq_length=cfg.image_tokens,
        tie_word_embeddings=False,
        **ids,
    )


def build_tiny_lmm(
    tokenizer_texts: Iterable[str], cfg: TinyModelConfig | None = None, seed: int = 0
) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """Train a tokenizer on ``tokenizer_texts`` and build a randomly initialised tiny LLaVA.

    The same texts, config and seed give the same weights. Returns ``(model, processor)``.
    """
    cfg = cfg or TinyModelConfig()
    tokenizer = train_tokenizer(tokenizer_texts, cfg.vocab_size)
    processor = build_processor(tokenizer, cfg)
    config = build_config(tokenizer, cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(config)
    for key, value in (
        ("pad_token_id", tokenizer.pad_token_id),
        ("bos_token_id", tokenizer.bos_token_id),
        ("eos_token_id", tokenizer.eos_token_id),
    ):
        setattr(model.generation_config, key, value)
    model.eval()
    return model, processor
