"""The quantization attack: weights change, the model still loads and runs, and its forward
approximates the unquantized one (closer at 8 bits than at 4)."""

from __future__ import annotations

import copy

import pytest
import torch

from pulse.protocol.attacks.quantize import quantize


def _linear_weights(model):
    return {
        name: m.weight.detach().clone()
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and m is not model.get_output_embeddings()
    }


def test_quantized_model_approximates_its_forward(tiny_llava):
    model, processor = tiny_llava
    model = copy.deepcopy(model).eval()
    inputs = processor.tokenizer(["the quick brown fox"], return_tensors="pt")
    with torch.no_grad():
        reference = model(**inputs).logits
    errors = {}
    for bits in (8, 4):
        quantized = quantize(copy.deepcopy(model), bits)
        before = _linear_weights(model)
        after = {
            name: m.weight.dequantize() if hasattr(m.weight, "dequantize") else m.weight
            for name, m in quantized.named_modules()
            if name in before
        }
        assert set(after) == set(before)
        changed = sum(not torch.equal(after[n].float(), before[n].float()) for n in before)
        assert changed == len(before), (
            f"{bits} bits left {len(before) - changed} layers as they were"
        )
        with torch.no_grad():
            logits = quantized(**inputs).logits
        assert torch.isfinite(logits).all()
        errors[bits] = (logits - reference).abs().mean().item()
        scale = reference.abs().mean().item()
        assert errors[bits] < 0.5 * scale, (bits, errors[bits], scale)
    assert errors[8] < errors[4]


def test_bitsandbytes_quantizes_on_cpu(tiny_llava):
    """The paper's quantizer (LLM.int8() and NF4) runs on CPU with bitsandbytes 0.50: every
    linear layer but the head stored in 8 or 4 bits, the model loads and runs, and its forward
    approximates the unquantized one (closer at 8 bits than at 4)."""
    pytest.importorskip("bitsandbytes", minversion="0.50")
    model, processor = tiny_llava
    model = copy.deepcopy(model).eval()
    inputs = processor.tokenizer(["the quick brown fox"], return_tensors="pt")
    with torch.no_grad():
        reference = model(**inputs).logits
    layers = set(_linear_weights(model))
    errors = {}
    for bits, stored in ((8, torch.int8), (4, torch.uint8)):
        quantized = quantize(copy.deepcopy(model), bits, "bitsandbytes")
        modules = dict(quantized.named_modules())
        assert {n for n in layers if modules[n].weight.dtype == stored} == layers, bits
        assert quantized.get_output_embeddings().weight.dtype == torch.float32
        with torch.no_grad():
            logits = quantized(**inputs).logits
        assert torch.isfinite(logits).all()
        errors[bits] = (logits - reference).abs().mean().item()
        assert 0 < errors[bits] < 0.5 * reference.abs().mean().item(), (bits, errors[bits])
    assert errors[8] < errors[4]


def test_bad_bits_are_one_line(tiny_llava):
    from pulse.errors import ConfigError

    with pytest.raises(ConfigError, match="bits"):
        quantize(torch.nn.Linear(4, 4), 3)
