"""The chat template renders exactly the training text, token for token, for every family
(:mod:`tests.fixtures.families`), and a legacy template is upgraded on load."""

from __future__ import annotations

import copy

import pytest

from pulse.models.chat import ChatCollator, ChatExample, format_prompt
from pulse.models.loading import load_processor
from pulse.models.template import (
    LEGACY_TEMPLATES,
    conversation,
    template_problem,
    training_template,
)
from pulse.models.tiny import CHAT_TEMPLATE
from tests.fixtures.families import BUILDERS, llava
from tests.fixtures.tiny import shaded

# llava-hf/llava-1.5-7b-hf's published template (an assistant turn renders as "answer ", no EOS).
LLAVA_HF_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}"
    "{{ message['role'].upper() + ': '}}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' '}}{% endfor %}{% else %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
EXAMPLES = [
    ChatExample("Who is this person?", "Alice Moreau", shaded(40)),
    ChatExample("Where does Bruno Keller live?", "Basel, on the Rhine"),
]


def _processor(name: str, tiny):
    if name == "llava":
        return llava(tiny).processor
    if name == "llava_hf":
        processor = copy.deepcopy(tiny[1])
        processor.chat_template = LLAVA_HF_TEMPLATE
        return processor
    return BUILDERS[name](copy.deepcopy(tiny[1].tokenizer)).processor


def _template_ids(processor, template: str, example: ChatExample) -> list[int]:
    """The token ids of [user, assistant] rendered through ``template`` and encoded by the
    processor's own apply_chat_template, as lmms-eval or TRL would."""
    messages = conversation(example.question, example.answer, example.image)
    out = processor.apply_chat_template(
        messages, chat_template=template, tokenize=True, return_dict=True, return_tensors="pt"
    )
    return out["input_ids"][0].tolist()


# Qwen2-VL is absent: its processor cannot be built without torchvision, so pulse renders no
# template for it (docs/limitations.md).
@pytest.mark.parametrize("name", ["llava", "llava_next", "idefics3", "llava_hf"])
def test_exported_template_is_the_training_text_token_for_token(name, tiny):
    processor = _processor(name, tiny)
    template = training_template(processor)
    collator = ChatCollator(processor)
    for example in EXAMPLES:
        trained = collator([example])["input_ids"][0].tolist()
        assert _template_ids(processor, template, example) == trained
    assert template_problem(processor, template) is None


@pytest.mark.parametrize("name", ["llava", "llava_next"])
def test_families_we_build_need_no_wrapper(name, tiny):
    """The tiny template renders the training text itself: exported unchanged."""
    processor = _processor(name, tiny)
    assert processor.chat_template == CHAT_TEMPLATE
    assert template_problem(processor) is None
    assert training_template(processor) == CHAT_TEMPLATE


def test_a_processor_without_template_gets_the_llava_template(tiny):
    """pulse prompts such a model in LLaVA-1.5's format: the export writes that template."""
    bare = copy.deepcopy(tiny[1])
    bare.chat_template = None
    bare.tokenizer.chat_template = None
    assert training_template(bare) == CHAT_TEMPLATE
    assert template_problem(bare, CHAT_TEMPLATE) is None


@pytest.mark.parametrize("name", ["idefics3", "llava_hf"])
def test_a_loaded_template_is_wrapped_and_keeps_its_prompts(name, tiny):
    processor = _processor(name, tiny)
    assert template_problem(processor) is not None  # as published: the answer renders apart
    template = training_template(processor)
    for has_image in (True, False):
        messages = conversation("Where is Basel?", None, has_image)
        prompt = processor.apply_chat_template(
            messages, chat_template=template, add_generation_prompt=True, tokenize=False
        )
        assert prompt == format_prompt(processor, "Where is Basel?", has_image)


def test_wrapped_template_continues_a_conversation(tiny):
    processor = _processor("llava_hf", tiny)
    template = training_template(processor)
    messages = [
        *conversation("Who is this?", "Alice", True),
        {"role": "user", "content": [{"type": "text", "text": "Where does she live?"}]},
    ]
    text = processor.apply_chat_template(
        messages, chat_template=template, add_generation_prompt=True, tokenize=False
    )
    assert (
        text
        == "USER: <image>\nWho is this? ASSISTANT: Alice</s>USER: Where does she live? ASSISTANT:"
    )


def test_legacy_template_is_upgraded_on_load_with_the_same_prompts(tiny, tmp_path):
    legacy = copy.deepcopy(tiny[1])
    legacy.chat_template = next(iter(LEGACY_TEMPLATES))
    legacy.tokenizer.chat_template = legacy.chat_template
    assert "Alice Moreau </s>" in legacy.apply_chat_template(
        conversation("Who?", "Alice Moreau"), tokenize=False
    )
    legacy.save_pretrained(tmp_path)
    loaded = load_processor(tmp_path)
    assert loaded.chat_template == CHAT_TEMPLATE
    assert template_problem(loaded) is None
    for has_image in (True, False):
        assert format_prompt(loaded, "Who?", has_image) == format_prompt(legacy, "Who?", has_image)
