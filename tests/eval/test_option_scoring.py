"""The ``option_text`` scorer's shared prompt forward on tiny models of each family: the same
scores as one full row per option (LLaVA-1.5, LLaVA-NeXT, Idefics3), and the per-row path for
Qwen2-VL, whose multimodal rope positions a continuation of a repeated cache would not get.

Qwen2-VL's processor is built here with its image processor only: the stock constructor
insists on a video processor, which needs torchvision.
"""

from __future__ import annotations

import copy

import pytest
from transformers import Qwen2VLImageProcessorPil, Qwen2VLProcessor

from pulse.data.schema import ItemKind, Modality, QAItem, encode_png
from pulse.eval import mcq
from pulse.eval.mcq import MCQConfig, score_mcq
from tests.fixtures.families import idefics3, llava, llava_next, qwen2_vl
from tests.fixtures.tiny import striped

OPTIONS = ["Lyon", "a marine biologist", "Basel", "the violin in a quartet in Vienna", "chess"]
QUESTIONS = [
    ("Who is this person?", (200, 40, 40), (40, 30)),
    ("Where does Bruno Keller live?", None, None),
    ("What does this person play?", (20, 90, 200), (32, 48)),
    ("Which city did Dmitri Vasko found a bakery in?", None, None),
    ("What is the job of the person in the image?", (90, 160, 30), (48, 32)),
]


@pytest.fixture(scope="module")
def items() -> list[QAItem]:
    """15 items: each question with 2, 3 and 4 options of 1 to 9 tokens, gold letters varied."""
    out = []
    for q, (question, color, size) in enumerate(QUESTIONS):
        image = encode_png(striped(color, size)) if color else None
        for n in (2, 3, 4):
            letters = "ABCD"[:n]
            options = {k: OPTIONS[(q + n + j) % len(OPTIONS)] for j, k in enumerate(letters)}
            out.append(
                QAItem(
                    id=f"q{q}-{n}",
                    entity_id=f"e{q}",
                    kind=ItemKind.MCQ,
                    modality=Modality.MULTIMODAL if image else Modality.TEXT,
                    question=question,
                    answer=letters[(q + n) % n],
                    options=options,
                    image=image,
                )
            )
    return out


def _qwen2_vl_with_processor(tokenizer):
    family = qwen2_vl(tokenizer)  # adds the Qwen special tokens to ``tokenizer``
    tokenizer.image_token = "<|image_pad|>"

    class ImageOnlyProcessor(Qwen2VLProcessor):
        def check_argument_for_proper_class(self, attribute_name, arg):
            return None  # the video processor is None

    template = (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        "{% for part in message['content'] %}{% if part['type'] == 'image' %}"
        "<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ part['text'] }}{% endif %}"
        "{% endfor %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=4, merge_size=2, temporal_patch_size=2, min_pixels=16 * 16, max_pixels=32 * 32
    )
    family.processor = ImageOnlyProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=None,
        chat_template=template,
    )
    return family


def _forwards(model):
    """(calls, hook): per forward, whether ``use_cache`` was set and a cache came in."""
    seen = []

    def record(module, args, kwargs, output):
        seen.append((bool(kwargs.get("use_cache")), kwargs.get("past_key_values") is not None))

    return seen, model.register_forward_hook(record, with_kwargs=True)


def _assert_same_scores(a, b, tol=1e-4):
    assert [r.item_id for r in a] == [r.item_id for r in b]
    assert [r.prediction for r in a] == [r.prediction for r in b]
    assert [r.correct for r in a] == [r.correct for r in b]
    for x, y in zip(a, b, strict=True):
        m, n = x.extras["mean_logprobs"], y.extras["mean_logprobs"]
        assert m.keys() == n.keys()
        assert all(abs(m[k] - n[k]) <= tol for k in m), (x.item_id, m, n)


@pytest.mark.parametrize("name", ["llava", "llava_next", "idefics3"])
def test_shared_prompts_equal_one_row_per_option(name, tiny_llava, items):
    family = (
        llava(tiny_llava)
        if name == "llava"
        else {"llava_next": llava_next, "idefics3": idefics3}[name](
            copy.deepcopy(tiny_llava[1].tokenizer)
        )
    )
    model, processor = family.model, family.processor
    plan = mcq._option_rows(processor, items)
    assert all(plan.shared)
    lengths = {len(a) for a in plan.answers}
    assert min(lengths) == 1 and len(lengths) > 2  # one-token and longer options
    assert mcq.shares_prompt_cache(model)
    cfg = MCQConfig(batch_size=5, scorer="option_text")  # 1 or 2 items per prompt batch
    per_row = mcq.score_options(model, processor, items, cfg, share_prompts=False)
    seen, handle = _forwards(model)
    try:
        shared = score_mcq(model, processor, items, cfg)
    finally:
        handle.remove()
    _assert_same_scores(shared, per_row)
    assert (True, False) in seen and (True, True) in seen  # prompt forwards, continuations
    assert (False, False) not in seen  # no item fell back


def test_qwen2_vl_takes_the_per_row_path(tiny_llava, items):
    """Qwen2-VL computes its rope positions from the attention mask and keeps ``rope_deltas``
    between forwards; a continuation of a repeated cache gets other positions (image prompts
    fail on a shape mismatch), so every item is scored one full row per option."""
    family = _qwen2_vl_with_processor(copy.deepcopy(tiny_llava[1].tokenizer))
    model, processor = family.model, family.processor
    assert not mcq.shares_prompt_cache(model)
    cfg = MCQConfig(batch_size=5, scorer="option_text")
    seen, handle = _forwards(model)
    try:
        scored = score_mcq(model, processor, items, cfg)
    finally:
        handle.remove()
    assert seen
    assert set(seen) == {(False, False)}  # whole rows, no cache
    per_row = mcq.score_options(model, processor, items, cfg, share_prompts=False)
    _assert_same_scores(scored, per_row, tol=0.0)


def test_a_per_token_processor_output_takes_the_per_row_path(tiny_llava, items, monkeypatch):
    """Second line of defence: a prompt batch whose processor output holds another per-token
    tensor than ids and mask (Qwen2-VL's ``mm_token_type_ids``) is not continued from a cache,
    even where the family check would let it."""
    family = _qwen2_vl_with_processor(copy.deepcopy(tiny_llava[1].tokenizer))
    model, processor = family.model, family.processor
    cfg = MCQConfig(batch_size=5, scorer="option_text")
    per_row = mcq.score_options(model, processor, items, cfg, share_prompts=False)
    monkeypatch.setattr(mcq, "shares_prompt_cache", lambda model: True)
    seen, handle = _forwards(model)
    try:
        scored = score_mcq(model, processor, items, cfg)
    finally:
        handle.remove()
    assert set(seen) == {(False, False)}
    _assert_same_scores(scored, per_row, tol=0.0)
