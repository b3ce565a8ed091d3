"""The method contract: a batch of sub-batches, and a context for the reference model.

A method is a pure loss ``loss(model, batch, ctx) -> (scalar, logs)``. ``batch`` is an
:class:`UnlearnBatch` whose ``forget`` / ``retain`` / ``idk`` sub-batches are collated
:class:`~transformers.BatchFeature` with answer-only labels. ``ctx`` is a :class:`MethodContext`:
the reference model (by default the same model with its adapter disabled: no second copy),
reference log-probs over the fixed forget set computed once per request, and per-request state.

Sub-batch ``idk`` holds the forget questions with refusal answers, row for row with ``forget``,
so both are keyed by the forget example indices in ``batch.index``.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn
from transformers import BatchFeature, modeling_utils

from pulse.errors import ConfigError, ModelError
from pulse.methods.losses import AnswerTokens, prediction_mask, select_answers, sequence_logprob
from pulse.models.adapters import base_model, reference_mode
from pulse.models.packing import EXAMPLE_INDEX

SUB_BATCHES = ("forget", "retain", "idk")


@dataclass
class UnlearnBatch:
    """One training step's data. ``index``: the forget examples' indices in the request's fixed
    forget set (for cached reference values); ``retain_index``: the retain examples drawn."""

    forget: BatchFeature | None = None
    retain: BatchFeature | None = None
    idk: BatchFeature | None = None
    index: Tensor | None = None
    retain_index: Tensor | None = None
    constructed: dict[str, BatchFeature] = field(default_factory=dict)  # a method's own sources

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> UnlearnBatch:
        """From the collated mapping the data loader yields (see ``UnlearnCollator``)."""
        return cls(
            forget=inputs.get("forget"),
            retain=inputs.get("retain"),
            idk=inputs.get("idk"),
            index=inputs.get("forget_index"),
            retain_index=inputs.get("retain_index"),
            constructed={
                k: v
                for k, v in inputs.items()
                if k not in (*SUB_BATCHES, "forget_index", "retain_index")
            },
        )

    def sub(self, name: str) -> BatchFeature:
        value = getattr(self, name, None) if name in SUB_BATCHES else self.constructed.get(name)
        if value is None:
            raise ModelError(
                f"this batch has no {name!r} sub-batch (the method did not ask for it)"
            )
        return value


def model_inputs(sub: Mapping[str, Any]) -> dict[str, Any]:
    """The sub-batch without ``labels`` (the model would otherwise compute its own full-vocab
    loss at every position, which no method uses), and without a KV cache: a method's forward
    never generates, and a no-grad reference forward would keep every layer's keys and values
    alive in it. A packed sub-batch's ``example_index`` is bookkeeping, not a model input.
    (Without a cache, packed position ids give the block-diagonal mask: see
    :mod:`pulse.models.packing`.)"""
    inputs = {k: v for k, v in sub.items() if k not in ("labels", EXAMPLE_INDEX)}
    return {**inputs, "use_cache": False}


def _unwrap(model: nn.Module) -> nn.Module:
    # DDP / DeepSpeed engines keep the model in `.module`; PEFT under `get_base_model()`.
    while isinstance(getattr(model, "module", None), nn.Module):
        model = model.module
    return base_model(model)


_KEEPS_LOGITS: dict[type, bool] = {}


def _keeps_logits(model: nn.Module) -> bool:
    """Whether the model's forward takes a boolean ``logits_to_keep`` mask: it takes the
    argument and this transformers slices with ``slice_logits_to_keep`` (every LMM family of
    transformers 5.2x does)."""
    inner = type(_unwrap(model))
    if inner not in _KEEPS_LOGITS:
        takes = "logits_to_keep" in inspect.signature(inner.forward).parameters
        _KEEPS_LOGITS[inner] = takes and hasattr(modeling_utils, "slice_logits_to_keep")
    return _KEEPS_LOGITS[inner]


def answer_tokens(
    model: nn.Module, sub: Mapping[str, Any], **kwargs: Any
) -> tuple[AnswerTokens, Any]:
    """Forward ``sub`` and return its answer tokens and the model output.

    The vocabulary projection runs at the answer-predicting positions only (a boolean
    ``logits_to_keep``): the ``[B, T, V]`` logits of a 32k vocabulary over 600 image tokens are
    never materialised. Models without ``logits_to_keep`` get full logits, masked afterwards.
    """
    labels = sub["labels"]
    mask = prediction_mask(labels)
    if not _keeps_logits(model):
        out = model(**model_inputs(sub), **kwargs)
        answers = select_answers(out.logits, labels)
    else:
        out = model(**model_inputs(sub), logits_to_keep=mask, **kwargs)
        if out.logits.dim() != 2:  # a forward that ignores the boolean mask form
            answers = select_answers(out.logits, labels)
        else:
            answers = AnswerTokens(
                logits=out.logits,
                targets=labels[:, 1:][mask[:, :-1]],
                rows=mask.nonzero()[:, 0],
                n_rows=labels.shape[0],
            )
    example = sub.get(EXAMPLE_INDEX)
    if example is not None:
        # A packed row holds several examples: each token counts for the example its label
        # belongs to, so per-row sums (sequence log-probs) stay per example.
        answers = replace(answers, rows=example[:, 1:][mask[:, :-1]], n_rows=int(example.max()) + 1)
    return answers, out


@dataclass
class MethodContext:
    """What a loss may ask of the loop besides its batch.

    ``model`` is the PEFT model being trained (unwrapped). The reference is ``reference_model``
    when given (a separate copy, as public tools do; the speed benchmark uses it), else ``model``
    with its adapter disabled. ``cached`` names the sub-batches (``forget``, ``idk``) whose
    per-sequence reference log-probs are computed once per request over ``sources`` and then
    looked up by ``batch.index``; ``collate`` turns a list of examples into a sub-batch.
    """

    model: nn.Module
    reference_model: nn.Module | None = None
    cached: frozenset[str] = frozenset()
    sources: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    collate: Any = None
    batch_size: int = 8
    device: torch.device | str | None = None
    seed: int = 0
    step: int = 0  # optimizer steps done so far, set by the loop
    state: dict[str, Any] = field(default_factory=dict)  # per-request scratch and facts to report
    _cache: dict[str, Tensor] = field(default_factory=dict, repr=False)

    @contextmanager
    def reference(self) -> Iterator[nn.Module]:
        """The reference model, in eval mode (no dropout) and without gradients."""
        with torch.no_grad():
            if self.reference_model is not None:
                yield self.reference_model
                return
            was_training = self.model.training
            self.model.eval()
            try:
                with reference_mode(self.model) as ref:
                    yield ref
            finally:
                self.model.train(was_training)

    def reference_forward(self, sub: Mapping[str, Any], **kwargs: Any) -> Any:
        """The reference model's output on ``sub`` (labels dropped), without gradients."""
        with self.reference() as ref:
            return ref(**model_inputs(sub), **kwargs)

    def reference_answers(self, sub: Mapping[str, Any]) -> AnswerTokens:
        """The reference model's answer tokens on ``sub``."""
        with self.reference() as ref:
            return answer_tokens(ref, sub)[0]

    def reference_logprobs(self, batch: UnlearnBatch, name: str) -> Tensor:
        """logπ_ref(y|x) per row ``[B]`` of sub-batch ``name``: from the per-request cache when
        ``name`` is cached, else by a reference forward."""
        if name in self.cached and batch.index is not None:
            return self._cached(name)[batch.index]
        return sequence_logprob(self.reference_answers(batch.sub(name)))

    def batches(self, name: str, n_batches: int) -> Iterator[BatchFeature]:
        """Up to ``n_batches`` collated sub-batches of source ``name``, in a seeded order."""
        examples = self._source(name)
        order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(self.seed))
        for start in range(0, min(len(examples), n_batches * self.batch_size), self.batch_size):
            chunk = [examples[i] for i in order[start : start + self.batch_size].tolist()]
            yield self._to_device(self.collate(chunk))

    def _source(self, name: str) -> Sequence[Any]:
        examples = self.sources.get(name)
        if not examples or self.collate is None:
            raise ConfigError(f"this method needs {name} examples and the request has none")
        return examples

    def _to_device(self, sub: BatchFeature) -> BatchFeature:
        return sub.to(self.device) if self.device is not None else sub

    def _cached(self, name: str) -> Tensor:
        if name not in self._cache:
            start = time.perf_counter()
            examples = self._source(name)
            values = []
            for i in range(0, len(examples), self.batch_size):
                sub = self._to_device(self.collate(list(examples[i : i + self.batch_size])))
                values.append(sequence_logprob(self.reference_answers(sub)))
            self._cache[name] = torch.cat(values)
            seconds = self.state.get("reference_cache_seconds", 0.0)
            self.state["reference_cache_seconds"] = seconds + time.perf_counter() - start
        return self._cache[name]
