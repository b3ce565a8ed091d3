"""Multiple-choice evaluation with a model, by scorer name.

- ``letter`` (default): one left-padded forward per batch of prompts, reading only the last
  position's logits (``logits_to_keep=1``), where the answer's first token would be generated.
  The prediction is the valid option letter with the highest log-probability (see
  :mod:`pulse.eval.scoring`).
- ``option_text``: each option's text is scored as the answer, ``s_o = (1/|o|) sum_t log
  p(o_t | prompt, o_<t)`` over its tokens (no EOS); one row per (item, option), left-padded so
  every answer ends the row and only the last ``max |o| + 1`` positions' logits are computed.
- ``generate`` / ``mllmu``: greedy generation, see :mod:`pulse.eval.generation`.

Rows are sorted by ``(has image, prompt length)`` so batches carry little padding; results come
back in input order, one :class:`~pulse.eval.records.ItemRecord` per item. On an accelerator the
next batch is encoded in a worker thread while the model runs
(:func:`~pulse.eval.batching.prefetch`); the scores are the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pulse.data.schema import OPTION_LETTERS, ItemKind, QAItem
from pulse.errors import ConfigError, ModelError
from pulse.eval.batching import (
    chunks,
    eval_mode,
    length_order,
    model_device,
    overlap_default,
    prefetch,
    progress,
)
from pulse.eval.prompts import mmbench_prompt
from pulse.eval.records import ItemRecord
from pulse.eval.scoring import (
    ChoiceScores,
    answer_logprob,
    score_letter_logits,
    score_option_texts,
    token_logprobs,
)
from pulse.models.chat import ChatCollator, ChatExample, encode_prompts, format_prompt

SCORERS = ("letter", "option_text", "generate", "mllmu")


@dataclass(frozen=True)
class MCQConfig:
    """``batch_size`` counts rows: prompts for ``letter`` and generation, (item, option) pairs
    for ``option_text``. ``max_new_tokens`` concerns generation; ``seed`` and ``shots`` the
    ``mllmu`` few-shot draw. ``overlap`` (encode ahead in a thread) defaults to on for a model
    on an accelerator, off on the CPU, where the forward already uses every core."""

    batch_size: int = 32
    progress: bool = False
    scorer: str = "letter"
    max_new_tokens: int = 50
    seed: int = 0
    shots: int = 1
    overlap: bool | None = None


def letter_token_ids(processor: Any, letters: Sequence[str] = OPTION_LETTERS) -> dict[str, int]:
    """The token each option letter starts with when it is the answer after a prompt.

    Measured through the training collator's own answer tokenization, so the scorer reads the
    exact token a fine-tuned model learnt to produce (e.g. ``"ĠA"`` after ``ASSISTANT:``).
    """
    collator = ChatCollator(processor)
    prompt = format_prompt(processor, "?", has_image=False)
    fulls = [collator.texts([ChatExample("?", letter)])[1][0] for letter in letters]
    ids = {
        letter: answer[0]
        for letter, answer in zip(
            letters, collator.answer_tokens([prompt] * len(letters), fulls), strict=True
        )
    }
    if len(set(ids.values())) != len(ids):
        raise ValueError(
            f"option letters share a first token, so the letter scorer cannot tell them apart: "
            f"{ids}; use the generation scorer for this tokenizer"
        )
    return ids


def item_prompt(item: QAItem) -> str:
    """The user text of a multiple-choice item (hint line first when the item has one)."""
    return mmbench_prompt(item.question, item.options, item.meta.get("hint"))


def check_scorer(name: str) -> str:
    if name not in SCORERS:
        raise ConfigError(f"unknown MCQ scorer {name!r}: expected one of {', '.join(SCORERS)}")
    return name


def score_mcq(
    model: nn.Module,
    processor: Any,
    items: Sequence[QAItem],
    cfg: MCQConfig | None = None,
    *,
    pool: Sequence[QAItem] | None = None,
) -> list[ItemRecord]:
    """Score multiple-choice ``items`` with ``cfg.scorer``; one record per item, in order.

    ``pool`` holds the few-shot items of the ``mllmu`` scorer (none of the evaluated entities).
    """
    cfg = cfg or MCQConfig()
    check_scorer(cfg.scorer)
    if any(item.kind is not ItemKind.MCQ for item in items):
        raise ValueError("score_mcq takes multiple-choice items only")
    if cfg.scorer == "letter":
        return score_letters(model, processor, items, cfg)
    if cfg.scorer == "option_text":
        return score_options(model, processor, items, cfg)
    # Imported here: generation builds on this module (item_prompt).
    from pulse.eval.generation import GenConfig, generate_mcq, mllmu_mcq

    gen = GenConfig(cfg.batch_size, cfg.max_new_tokens, cfg.progress)
    if cfg.scorer == "generate":
        return generate_mcq(model, processor, items, gen)
    if pool is None:
        raise ConfigError("the mllmu scorer needs a few-shot pool (items of other entities)")
    return mllmu_mcq(model, processor, items, pool, gen, seed=cfg.seed, shots=cfg.shots)


@torch.inference_mode()
def score_letters(
    model: nn.Module, processor: Any, items: Sequence[QAItem], cfg: MCQConfig | None = None
) -> list[ItemRecord]:
    """The ``letter`` scorer (see the module docstring)."""
    cfg = cfg or MCQConfig()
    if not items:
        return []
    letter_ids = letter_token_ids(processor, sorted({k for item in items for k in item.options}))
    prompts = [item_prompt(item) for item in items]
    order = length_order(processor, prompts, [item.image is not None for item in items])
    device = model_device(model)
    records: dict[int, ItemRecord] = {}

    def encode(batch: list[int]) -> Any:
        return encode_prompts(
            processor, [ChatExample(prompts[i], image=items[i].image) for i in batch]
        )

    batches = chunks(order, cfg.batch_size)
    with eval_mode(model):
        encoded = prefetch(encode, batches, overlap=_overlap(cfg, device))
        for batch, inputs in progress(encoded, cfg.progress, "scoring", len(batches)):
            inputs = inputs.to(device)
            # No KV cache: nothing is generated after this forward (a cache of a batch of 32
            # image prompts on a 7B model is about 11 GB).
            logits = model(**inputs, logits_to_keep=1, use_cache=False).logits[:, -1, :]
            scores = score_letter_logits(
                logits,
                [{letter: letter_ids[letter] for letter in items[i].options} for i in batch],
                [items[i].answer for i in batch],
            )
            records.update(_records(items, batch, scores))
    return [records[i] for i in range(len(items))]


@torch.inference_mode()
def score_options(
    model: nn.Module, processor: Any, items: Sequence[QAItem], cfg: MCQConfig | None = None
) -> list[ItemRecord]:
    """The ``option_text`` scorer (see the module docstring)."""
    cfg = cfg or MCQConfig()
    if not items:
        return []
    collator = ChatCollator(processor, add_eos=False)
    rows = [(i, letter) for i, item in enumerate(items) for letter in sorted(item.options)]
    examples = [
        ChatExample(item_prompt(items[i]), items[i].options[letter], items[i].image)
        for i, letter in rows
    ]
    prompts, fulls, images = collator.texts(examples)
    answers = collator.answer_tokens(prompts, fulls)
    order = length_order(processor, fulls, [img is not None for img in images])
    device = model_device(model)
    means: list[dict[str, float]] = [{} for _ in items]

    def encode(batch: list[int]) -> Any:
        return processor(
            text=[fulls[r] for r in batch],
            images=[images[r] for r in batch if images[r] is not None] or None,
            padding=True,
            padding_side="left",
            add_special_tokens=_add_special(collator.tokenizer, fulls[batch[0]]),
            return_tensors="pt",
        )

    batches = chunks(order, cfg.batch_size)
    with eval_mode(model):
        encoded = prefetch(encode, batches, overlap=_overlap(cfg, device))
        for batch, inputs in progress(encoded, cfg.progress, "scoring options", len(batches)):
            inputs = inputs.to(device)
            lengths = [len(answers[r]) for r in batch]
            ids = inputs["input_ids"]
            for row, r in enumerate(batch):
                # Left padding: each row must end with its answer tokens.
                if (
                    not answers[r]
                    or ids[row, ids.shape[1] - len(answers[r]) :].tolist() != answers[r]
                ):
                    raise ModelError(
                        f"item {items[rows[r][0]].id}, option {rows[r][1]}: the answer tokens "
                        "differ between the processor and the tokenizer"
                    )
            keep = max(lengths) + 1
            logits = model(**inputs, logits_to_keep=keep, use_cache=False).logits
            window = ids[:, -keep:]
            mask = torch.zeros_like(window, dtype=torch.bool)
            for row, n in enumerate(lengths):
                mask[row, keep - n :] = True
            mean = answer_logprob(token_logprobs(logits, window), mask).tolist()
            for r, value in zip(batch, mean, strict=True):
                i, letter = rows[r]
                means[i][letter] = value
    scores = score_option_texts(means, [item.answer for item in items])
    records = _records(items, range(len(items)), scores, key="mean_logprobs", raw=means)
    return [records[i] for i in range(len(items))]


def _overlap(cfg: MCQConfig, device: torch.device) -> bool:
    return overlap_default(device) if cfg.overlap is None else cfg.overlap


def _add_special(tokenizer: Any, text: str) -> bool:
    # As the chat layer does: a template that already writes BOS must not get a second one.
    bos = getattr(tokenizer, "bos_token", None)
    return not (bos and text.startswith(bos))


def _records(
    items: Sequence[QAItem],
    batch: Sequence[int],
    scores: ChoiceScores,
    *,
    key: str | None = None,
    raw: Sequence[dict[str, float]] | None = None,
) -> dict[int, ItemRecord]:
    out = {}
    for j, i in enumerate(batch):
        item = items[i]
        extras: dict[str, Any] = {"logprobs": scores.log_probs[j], **item.meta}
        if key is not None and raw is not None:
            extras[key] = dict(sorted(raw[i].items()))
        out[i] = ItemRecord(
            item_id=item.id,
            entity_id=item.entity_id,
            kind=item.kind,
            modality=item.modality,
            prediction=scores.predicted[j],
            gold=item.answer,
            correct=scores.correct[j] if scores.correct is not None else None,
            extras=extras,
        )
    return out
