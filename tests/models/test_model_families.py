"""Tiny random models of each supported family (:mod:`tests.fixtures.families`): forward,
answer-only loss, one LoRA step on all three components, adapter and merged save / reload."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

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
from tests.fixtures.families import BUILDERS, Family, llava

# tests/protocol/test_families.py imports these two from here (by these names).


@pytest.fixture(params=["llava", "llava_next", "qwen2_vl", "idefics3"])
def family(request, tiny) -> Family:
    if request.param == "llava":
        return llava(tiny)
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
