from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from pulse.errors import ConfigError, ModelError
from pulse.models.adapters import UpdateScope, apply_scope, save_adapter
from pulse.models.chat import ChatCollator
from pulse.models.loading import (
    check_model_dir,
    load_model,
    load_model_and_processor,
    load_processor,
)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_missing_directory(tmp_path):
    with pytest.raises(ModelError) as exc:
        load_model(tmp_path / "nope")
    assert str(tmp_path / "nope") in _one_line(exc)


def test_directory_without_config(tmp_path):
    with pytest.raises(ModelError, match=r"no config\.json"):
        check_model_dir(tmp_path)


def test_directory_without_weights(tiny_dir, tmp_path):
    shutil.copy(tiny_dir / "config.json", tmp_path / "config.json")
    with pytest.raises(ModelError, match=r"no \*\.safetensors"):
        load_model(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ModelError, match=r"only \.bin"):
        load_model(tmp_path)


def test_model_type_we_cannot_drive(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelError) as exc:
        load_model(tmp_path)
    assert "'bert'" in _one_line(exc)


def test_corrupt_weights_are_one_line(tiny_dir, tmp_path):
    shutil.copy(tiny_dir / "config.json", tmp_path / "config.json")
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError) as exc:
        load_model(tmp_path)
    assert "cannot load the model" in _one_line(exc)


def test_bad_dtype_is_a_config_error(tiny_dir):
    with pytest.raises(ConfigError, match="float64"):
        load_model(tiny_dir, dtype="float64")


@pytest.mark.parametrize(
    ("dtype", "expected"), [("float32", torch.float32), ("bfloat16", torch.bfloat16)]
)
def test_load_with_dtype_offline(tiny_dir, dtype, expected):
    model = load_model(tiny_dir, dtype=dtype, device="cpu")
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert next(model.parameters()).dtype == expected
    assert not model.training


def test_load_model_and_processor_matches_the_saved_model(tiny, tiny_dir, examples):
    model, processor = load_model_and_processor(tiny_dir, dtype="auto")
    batch = ChatCollator(processor)(examples)
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, tiny[0](**batch).logits)


def test_load_with_adapter(fresh_model, tiny_dir, processor, examples, tmp_path):
    batch = ChatCollator(processor)(examples)
    model = apply_scope(fresh_model, UpdateScope(projector="lora", rank=2))
    for p in model.parameters():  # make the adapter non-trivial without a training loop
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.05)
    save_adapter(model, tmp_path / "adapter")
    loaded = load_model(tiny_dir, adapter=tmp_path / "adapter")
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, model.eval()(**batch).logits)
    with pytest.raises(ModelError, match="adapter_config"):
        load_model(tiny_dir, adapter=tmp_path)


def test_processor_missing_directory(tmp_path):
    with pytest.raises(ModelError):
        load_processor(tmp_path / "nope")
