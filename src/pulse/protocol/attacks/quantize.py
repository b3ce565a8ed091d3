"""Quantization attack: a model state quantized to 8 or 4 bits, then evaluated as it is.

Published work (arXiv 2410.16454) finds that quantizing an unlearned model to 4 bits restores
much of what it forgot: unlearning moves weights by less than a quantization step. The state is
loaded with its adapter merged; every ``nn.Linear`` except the output head is quantized (what
transformers' bitsandbytes integration does by default: the head stays in full precision).

Two backends (``scenarios.robustness.quantize.backend``; ``auto``: bitsandbytes on CUDA,
torchao on CPU):

- **bitsandbytes** (the paper's quantizer): the merged model is saved to a temporary
  directory and reloaded by transformers with a ``BitsAndBytesConfig`` on the model's device:
  8 bits as LLM.int8() (row-wise absmax int8 with outliers above 6.0 kept in float16), 4 bits
  as NF4 (blocks of 64; float16 compute on CUDA, the model's dtype on CPU). bitsandbytes 0.50
  runs both on CPU (tested there on the tiny model; the CUDA path is not tested here).
- **torchao** (the CPU default): torchao's weight-only ``IntxWeightOnlyConfig`` in place: 8
  bits symmetric per output channel (absmax rows like LLM.int8(), without its float16 outlier
  columns), 4 bits asymmetric integer levels per group of 64 input features (per output
  channel where a layer's width is not a multiple of 64) instead of NF4's normal-float levels.
  Activations stay in the model's dtype; weights are stored as integers and dequantized in
  each forward.
"""

from __future__ import annotations

import tempfile
import warnings
from typing import Literal

from torch import nn

from pulse.errors import ConfigError

BITS = (8, 4)
GROUP = 64  # the 4-bit group (bitsandbytes' NF4 block size)
Backend = Literal["auto", "torchao", "bitsandbytes"]


def backend(choice: Backend = "auto") -> str:
    """The library that quantizes: ``choice``, or for ``auto`` bitsandbytes on CUDA and
    torchao on CPU."""
    import torch

    if choice != "auto":
        return choice
    return "bitsandbytes" if torch.cuda.is_available() else "torchao"


def _head(model: nn.Module) -> nn.Module | None:
    get = getattr(model, "get_output_embeddings", None)
    return get() if callable(get) else None


def quantize_cpu(model: nn.Module, bits: int) -> nn.Module:
    """``model`` with its linear layers (not the head) quantized in place by torchao."""
    import torch

    if bits not in BITS:
        raise ConfigError(f"quantize: expected bits in {list(BITS)}, got {bits}")
    try:
        from torchao.quantization import IntxWeightOnlyConfig, quantize_
        from torchao.quantization.granularity import PerAxis, PerGroup
    except ImportError:
        raise ConfigError(
            "quantize: the CPU quantization attack needs torchao (pip install 'pulse[attacks]')"
        ) from None
    head = _head(model)

    def linear(width_ok: bool | None = None):
        def keep(module: nn.Module, name: str) -> bool:
            if not isinstance(module, nn.Linear) or module is head:
                return False
            return width_ok is None or (module.in_features % GROUP == 0) == width_ok

        return keep

    if bits == 8:
        config = IntxWeightOnlyConfig(weight_dtype=torch.int8, granularity=PerAxis(0))
        quantize_(model, config, filter_fn=linear())
    else:
        for grouped, granularity in ((True, PerGroup(GROUP)), (False, PerAxis(0))):
            config = IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=granularity)
            quantize_(model, config, filter_fn=linear(grouped))
    return model


def quantize_bitsandbytes(model: nn.Module, bits: int) -> nn.Module:
    """``model`` saved and reloaded by transformers with bitsandbytes, on its device."""
    import torch
    from transformers import BitsAndBytesConfig

    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ConfigError(
            "quantize: the bitsandbytes backend needs bitsandbytes "
            "(pip install 'pulse[bitsandbytes]')"
        ) from None
    device = next(model.parameters()).device
    if bits == 8:
        config = BitsAndBytesConfig(load_in_8bit=True)
    else:
        compute = torch.float16 if device.type == "cuda" else next(model.parameters()).dtype
        config = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute
        )
    # LLM.int8() computes in float16 and says so at every forward of every layer.
    warnings.filterwarnings("ignore", message="MatMul8bitLt: inputs will be cast")
    place = (device.index or 0) if device.type == "cuda" else str(device)
    with tempfile.TemporaryDirectory(prefix="pulse-quantize-") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        quantized = type(model).from_pretrained(
            tmp, quantization_config=config, device_map={"": place}
        )
    quantized.eval()
    return quantized


def quantize(model: nn.Module, bits: int, backend_choice: Backend = "auto") -> nn.Module:
    """The state ``model`` (adapter merged) quantized to ``bits`` by ``backend_choice``
    (:func:`backend`)."""
    if bits not in BITS:
        raise ConfigError(f"quantize: expected bits in {list(BITS)}, got {bits}")
    if backend(backend_choice) == "bitsandbytes":
        return quantize_bitsandbytes(model, bits)
    model = quantize_cpu(model, bits)
    model.eval()
    return model
