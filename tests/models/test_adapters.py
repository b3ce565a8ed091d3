from __future__ import annotations

import copy
import re

import pytest
import torch
from transformers import AutoModelForImageTextToText

from pulse.errors import ConfigError, ModelError
from pulse.models.adapters import (
    UpdateScope,
    apply_scope,
    find_components,
    load_adapter,
    merge_and_new,
    reference_forward,
    save_adapter,
    save_merged,
    trainable_parameters,
)
from pulse.models.chat import ChatCollator


@pytest.fixture(scope="module")
def batch(processor, examples):
    return ChatCollator(processor)(examples)


def _lora_modules(model) -> list[str]:
    return [n.removesuffix(".lora_A") for n, _ in model.named_modules() if n.endswith(".lora_A")]


def _train(model, batch, steps: int, lr: float = 5e-3) -> list[float]:
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    losses = []
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    model.eval()
    return losses


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def test_components_of_llava(tiny_model):
    paths = find_components(tiny_model)
    assert paths.as_dict() == {
        "llm": "model.language_model",
        "projector": "model.multi_modal_projector",
        "vision": "model.vision_tower",
    }


def test_llm_scope_puts_lora_on_language_model_only(fresh_model):
    model = apply_scope(fresh_model, UpdateScope(llm="lora", rank=4))
    targets = _lora_modules(model)
    assert targets and all(".model.language_model.layers." in t for t in targets)
    assert not any("vision_tower" in t or "multi_modal_projector" in t for t in targets)
    leaves = {t.rsplit(".", 1)[-1] for t in targets}
    assert leaves == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    counts = trainable_parameters(model)
    assert counts["llm"] > 0 and counts["projector"] == counts["vision"] == counts["other"] == 0


def test_target_names_restrict_the_leaves(fresh_model):
    model = apply_scope(fresh_model, UpdateScope(rank=2, target_names=("q_proj", "v_proj")))
    assert {t.rsplit(".", 1)[-1] for t in _lora_modules(model)} == {"q_proj", "v_proj"}


@pytest.mark.parametrize(
    ("scope", "moving"),
    [
        (UpdateScope(llm="lora", projector="full"), {"llm", "projector"}),
        (UpdateScope(llm="lora", projector="lora"), {"llm", "projector"}),
        (UpdateScope(llm="frozen", projector="lora"), {"projector"}),
        (UpdateScope(llm="frozen", vision="lora"), {"vision"}),
        (UpdateScope(llm="lora", projector="full", vision="lora"), {"llm", "projector", "vision"}),
    ],
)
def test_scope_moves_exactly_the_chosen_components(fresh_model, scope, moving):
    paths = find_components(fresh_model)
    projector_size = sum(p.numel() for p in fresh_model.model.multi_modal_projector.parameters())
    model = apply_scope(fresh_model, scope)
    counts = trainable_parameters(model)
    assert {c for c in ("llm", "projector", "vision") if counts[c] > 0} == moving
    assert counts["other"] == 0
    assert counts["total"] == counts["llm"] + counts["projector"] + counts["vision"]
    if scope.projector == "full":
        assert counts["projector"] == projector_size
    for target in _lora_modules(model):
        inside = [c for c, p in paths.as_dict().items() if f".{p}." in target]
        assert inside and all(getattr(scope, c) == "lora" for c in inside)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"llm": "full"},
        {"projector": "half"},
        {"vision": "full"},
        {"rank": 0},
        {"llm": "frozen"},  # nothing left for PEFT to put LoRA on
        {"llm": "frozen", "projector": "full"},
        {"token_indices": (3, -1)},
    ],
)
def test_bad_scopes_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        UpdateScope(**kwargs)


def test_second_adapter_needs_merge(fresh_model):
    model = apply_scope(fresh_model, UpdateScope(rank=2))
    with pytest.raises(ModelError, match="merge_and_new"):
        apply_scope(model, UpdateScope(rank=2))
    with pytest.raises(ModelError, match="merge_and_new"):  # the wrapped model, LoRA inside
        apply_scope(model.get_base_model(), UpdateScope(rank=2))


def test_gradient_checkpointing_still_trains_lora(fresh_model, batch):
    model = apply_scope(fresh_model, UpdateScope(rank=2), gradient_checkpointing=True)
    model.train()
    model(**batch).loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_reference_without_adapter_is_an_error(tiny_model, batch):
    with pytest.raises(ModelError):
        reference_forward(tiny_model, **batch)


def test_adapter_disabled_forward_equals_base_exactly(fresh_model, batch):
    base = _logits(fresh_model, batch)
    model = apply_scope(fresh_model, UpdateScope(projector="full", vision="lora", rank=4))
    _train(model, batch, steps=3, lr=1e-2)
    assert not torch.equal(_logits(model, batch), base)
    assert torch.equal(reference_forward(model, **batch).logits, base)
    assert model.training is False and torch.is_grad_enabled()


def test_training_loss_decreases(fresh_model, batch):
    model = apply_scope(fresh_model, UpdateScope(projector="full", rank=8))
    losses = _train(model, batch, steps=20, lr=5e-3)
    # LoRA on a random base learns slowly; ln(vocab) ~ 6.1 falls to ~3.8 in 20 steps.
    assert losses[-1] < 0.7 * losses[0]
    assert sum(losses[-5:]) < sum(losses[5:10]) < sum(losses[:5])


def test_adapter_save_load_round_trip_is_exact(fresh_model, tiny_model, batch, tmp_path):
    model = apply_scope(fresh_model, UpdateScope(projector="full", vision="lora", rank=4))
    _train(model, batch, steps=2, lr=1e-2)
    save_adapter(model, tmp_path / "adapter")
    saved = {p.name for p in (tmp_path / "adapter").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= saved
    assert not any(name.startswith(".") for name in saved)  # no temporary left behind
    loaded = load_adapter(copy.deepcopy(tiny_model), tmp_path / "adapter")
    assert torch.equal(_logits(loaded, batch), _logits(model, batch))
    assert trainable_parameters(loaded)["total"] == 0  # loaded for inference


def test_continue_training_a_loaded_adapter(fresh_model, tiny_model, batch, tmp_path):
    model = apply_scope(fresh_model, UpdateScope(rank=4))
    _train(model, batch, steps=2)
    save_adapter(model, tmp_path / "a")
    resumed = load_adapter(copy.deepcopy(tiny_model), tmp_path / "a", trainable=True)
    assert trainable_parameters(resumed) == trainable_parameters(model)
    before = _logits(resumed, batch)
    _train(resumed, batch, steps=1)
    assert not torch.equal(_logits(resumed, batch), before)
    # Continuing the same adapter keeps the initial model as reference.
    assert torch.equal(reference_forward(resumed, **batch).logits, _logits(tiny_model, batch))


def test_merged_save_load_round_trip_is_exact(fresh_model, batch, tmp_path, processor):
    model = apply_scope(fresh_model, UpdateScope(projector="full", rank=4))
    _train(model, batch, steps=2, lr=1e-2)
    adapted = _logits(model, batch)
    merged = save_merged(model, tmp_path / "merged", processor)
    merged_logits = _logits(merged, batch)
    torch.testing.assert_close(merged_logits, adapted, atol=1e-5, rtol=1e-5)
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path / "merged")
    assert not any("lora" in n or "modules_to_save" in n for n, _ in reloaded.named_parameters())
    assert torch.equal(_logits(reloaded.eval(), batch), merged_logits)


def test_merge_and_new_makes_the_merged_model_the_reference(fresh_model, batch):
    model = apply_scope(fresh_model, UpdateScope(projector="full", rank=4))
    _train(model, batch, steps=2, lr=1e-2)
    adapted = _logits(model, batch)
    model = merge_and_new(model, UpdateScope(rank=2))
    counts = trainable_parameters(model)
    assert counts["llm"] > 0 and counts["projector"] == 0
    torch.testing.assert_close(reference_forward(model, **batch).logits, adapted)
    names = [n for n, _ in model.named_parameters()]
    assert not any("modules_to_save" in n for n in names)
    assert sum(bool(re.search(r"\.lora_A\.", n)) for n in names) > 0


def test_token_indices_train_those_embedding_rows_only(fresh_model, tiny_model, batch, tmp_path):
    """Trainable tokens: only the chosen rows move; disabled, saved and merged like LoRA."""
    rows = tuple(sorted(set(batch["input_ids"][0, :4].tolist())))  # prompt tokens: they matter
    model = apply_scope(fresh_model, UpdateScope(rank=4, token_indices=rows))
    assert (
        trainable_parameters(model)["llm"]
        > trainable_parameters(apply_scope(copy.deepcopy(tiny_model), UpdateScope(rank=4)))["llm"]
    )
    _train(model, batch, steps=3, lr=1e-2)
    assert torch.equal(reference_forward(model, **batch).logits, _logits(tiny_model, batch))
    save_adapter(model, tmp_path / "adapter")
    loaded = load_adapter(copy.deepcopy(tiny_model), tmp_path / "adapter")
    assert torch.equal(_logits(loaded, batch), _logits(model, batch))
    merged = save_merged(model, tmp_path / "merged", None)
    before = tiny_model.get_input_embeddings().weight
    moved = (merged.get_input_embeddings().weight - before).abs().sum(1).nonzero().flatten()
    assert tuple(moved.tolist()) == rows
    with pytest.raises(ConfigError, match="beyond the model's"):
        apply_scope(copy.deepcopy(tiny_model), UpdateScope(token_indices=(10**6,)))
