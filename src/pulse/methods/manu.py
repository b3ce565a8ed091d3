"""MANU, Modality-Aware Neuron Unlearning (Liu et al., ACL 2025, arXiv 2502.15910): training-free
pruning of the MLP neurons most important to the forget set relative to the retain set, scored
separately on multimodal and on text-only inputs."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from pulse.errors import ConfigError, ModelError
from pulse.methods.base import MethodContext, _keeps_logits, model_inputs
from pulse.methods.registry import NonNegative, Positive, check, doc, register
from pulse.models.adapters import base_model, find_components
from pulse.models.chat import ChatExample
from pulse.models.edits import WeightEdit

IMPORTANCES = ("abs", "freq", "var", "rms")
OUTPUT_LINEARS = ("down_proj", "fc2")  # the MLP linear that reads the intermediate neurons


@dataclass(frozen=True)
class MANUParams:
    fraction: Positive = field(
        default=0.02, metadata=doc("share of each MLP's neurons pruned per modality (top-k %)")
    )
    components: Literal["llm", "vision", "llm+vision"] = field(
        default="llm+vision", metadata=doc("where neurons are pruned: LLM and/or vision MLPs")
    )
    w_abs: NonNegative = field(default=1.0, metadata=doc("weight of the absolute importance"))
    w_freq: NonNegative = field(default=1.0, metadata=doc("weight of the frequency importance"))
    w_var: NonNegative = field(default=1.0, metadata=doc("weight of the variance importance"))
    w_rms: NonNegative = field(default=1.0, metadata=doc("weight of the RMS importance"))
    threshold: NonNegative = field(
        default=0.1, metadata=doc("τ, |activation| above which a neuron counts as firing (freq)")
    )

    def __post_init__(self) -> None:
        check(self.fraction < 1, "manu", "fraction", "a share < 1", self.fraction)
        weights = (self.w_abs, self.w_freq, self.w_var, self.w_rms)
        check(any(w > 0 for w in weights), "manu", "w_*", "at least one weight > 0", weights)

    @property
    def weights(self) -> dict[str, float]:
        values = (self.w_abs, self.w_freq, self.w_var, self.w_rms)
        return dict(zip(IMPORTANCES, values, strict=True))


class NeuronStats:
    """Running sums of one module's input activations, per neuron: n, Σ|a|, #(|a| > τ), Σa,
    Σa²; the four importances follow from them."""

    def __init__(self, width: int, threshold: float) -> None:
        self.threshold = threshold
        self.n = 0
        self.sums = {k: torch.zeros(width, dtype=torch.float64) for k in ("abs", "fire", "a", "a2")}

    def add(self, acts: Tensor) -> None:
        """``acts`` ``[N, width]``: one row per counted position."""
        a = acts.detach().double().cpu()
        self.n += a.shape[0]
        self.sums["abs"] += a.abs().sum(0)
        self.sums["fire"] += (a.abs() > self.threshold).double().sum(0)
        self.sums["a"] += a.sum(0)
        self.sums["a2"] += (a * a).sum(0)

    def importances(self) -> dict[str, Tensor]:
        """I_abs = mean|a|, I_freq = P(|a| > τ), I_var = std(a), I_rms = sqrt(mean a²)."""
        n = max(self.n, 1)
        mean, mean2 = self.sums["a"] / n, self.sums["a2"] / n
        return {
            "abs": self.sums["abs"] / n,
            "freq": self.sums["fire"] / n,
            "var": (mean2 - mean * mean).clamp(min=0).sqrt(),
            "rms": mean2.sqrt(),
        }


def neuron_modules(model: nn.Module, components: str) -> dict[str, nn.Linear]:
    """The MLP output linears (``down_proj`` / ``fc2``) of the chosen components, by path: their
    input columns are the MLP's intermediate neurons."""
    inner = base_model(model)
    paths = find_components(inner)
    roots = [getattr(paths, c) for c in components.split("+")]
    found = {
        name: module
        for name, module in inner.named_modules()
        if isinstance(module, nn.Linear)
        and name.rsplit(".", 1)[-1] in OUTPUT_LINEARS
        and ".mlp." in f".{name}"
        and any(name.startswith(f"{root}.") for root in roots)
    }
    if not found:
        raise ConfigError(f"method 'manu': no MLP neurons found in {components}")
    return found


def collect(
    model: nn.Module,
    modules: dict[str, nn.Linear],
    batches: Iterable[Any],
    threshold: float,
) -> dict[str, NeuronStats]:
    """Each module's neuron statistics over ``batches`` (collated sub-batches). Language-model
    activations count at the attended positions (padding excluded), vision-tower ones at every
    patch."""
    stats = {name: NeuronStats(m.in_features, threshold) for name, m in modules.items()}
    mask: list[Tensor | None] = [None]

    def hook(name: str):
        def record(_module, args):
            acts = args[0]
            m = mask[0]
            if m is not None and acts.shape[:2] == m.shape:
                stats[name].add(acts[m])
            else:
                stats[name].add(acts.reshape(-1, acts.shape[-1]))

        return record

    handles = [m.register_forward_pre_hook(hook(name)) for name, m in modules.items()]
    kwargs = {"logits_to_keep": 1} if _keeps_logits(model) else {}
    try:
        with torch.no_grad():
            for sub in batches:
                attention = sub.get("attention_mask")
                mask[0] = attention.bool() if attention is not None else None
                model(**model_inputs(sub), **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return stats


def combined_score(forget: NeuronStats, retain: NeuronStats, weights: dict[str, float]) -> Tensor:
    """S(j) = Σ_f w_f · (I_f(D_f)(j) / (I_f(D_r)(j) + ε) − 1), ε = 1e-5."""
    f, r = forget.importances(), retain.importances()
    score = torch.zeros_like(f["abs"])
    for name, weight in weights.items():
        if weight:
            score += weight * (f[name] / (r[name] + 1e-5) - 1)
    return score


def top_neurons(score: Tensor, fraction: float) -> Tensor:
    """The ⌈fraction · width⌉ highest-scoring neurons."""
    k = min(score.numel(), math.ceil(fraction * score.numel()))
    return torch.topk(score, k).indices.sort().values


def text_only(examples: Sequence[Any]) -> list[ChatExample]:
    """The examples without their images (the text-only view)."""
    return [ChatExample(_get(e, "question"), _get(e, "answer"), None) for e in examples]


def with_images(examples: Sequence[Any]) -> list[Any]:
    return [e for e in examples if _get(e, "image") is not None]


def _get(example: Any, key: str) -> Any:
    return example.get(key) if isinstance(example, dict) else getattr(example, key, None)


def _batches(ctx: MethodContext, examples: Sequence[Any]) -> Iterable[Any]:
    for start in range(0, len(examples), ctx.batch_size):
        yield ctx._to_device(ctx.collate(list(examples[start : start + ctx.batch_size])))


def manu_edit(model: nn.Module, ctx: MethodContext, p: MANUParams) -> WeightEdit:
    """Score every MLP neuron on forget vs retain data, per modality, and list the top
    ``fraction`` of each module per modality (their union) for pruning."""
    forget, retain = ctx._source("forget"), ctx._source("retain")
    modules = neuron_modules(model, p.components)
    vision = find_components(base_model(model)).vision
    views = {"text": (text_only(forget), text_only(retain))}
    mm = (with_images(forget), with_images(retain))
    if mm[0] and mm[1]:
        views["multimodal"] = mm
    pruned: dict[str, set[int]] = {name: set() for name in modules}
    info: dict[str, Any] = {}
    for view, (f_rows, r_rows) in views.items():
        # text-only inputs never reach the vision tower: only multimodal ones score it
        scored = {
            n: m for n, m in modules.items() if view == "multimodal" or not n.startswith(vision)
        }
        if not scored:
            continue
        f_stats = collect(model, scored, _batches(ctx, f_rows), p.threshold)
        r_stats = collect(model, scored, _batches(ctx, r_rows), p.threshold)
        chosen = 0
        for name in scored:
            score = combined_score(f_stats[name], r_stats[name], p.weights)
            picked = top_neurons(score, p.fraction)
            pruned[name].update(picked.tolist())
            chosen += picked.numel()
        info[f"manu_{view}_neurons"] = chosen
    columns = {n: torch.tensor(sorted(idx), dtype=torch.int64) for n, idx in pruned.items() if idx}
    total = sum(m.in_features for m in modules.values())
    edit = WeightEdit(columns, info)
    info["manu_pruned_neurons"] = edit.zeroed
    info["manu_pruned_fraction"] = round(edit.zeroed / total, 6)
    info["manu_modalities"] = "+".join(views)
    return edit


@register("manu", MANUParams, uses=("forget", "retain"), edit=manu_edit)
def manu(model, batch, ctx, p: MANUParams):
    """MANU (training-free): prune the MLP neurons with the highest score
    S_m(j) = Σ_f w_f · (I_f(D_f^m)(j) / (I_f(D_r^m)(j) + ε) − 1), per modality m.

    m is multimodal (rows with their image) or text-only (the same rows, image removed); f runs
    over the importance functions of neuron j's activation a (the input of the MLP's output
    linear, at attended positions): I_abs = mean|a|, I_freq = P(|a| > τ), I_var = std(a),
    I_rms = sqrt(mean a²); D_f / D_r the forget / retain rows; ε = 1e-5. In each MLP the top
    ``fraction`` of neurons by S_m is pruned for each modality (their union): column j of the
    output linear is zeroed. The vision tower is scored on multimodal inputs only. The edit is
    saved instead of an adapter (:mod:`pulse.models.edits`); no training loop runs.
    """
    raise ModelError("method 'manu' is training-free: it edits weights, it has no loss to train")
