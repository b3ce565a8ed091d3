"""Evaluation by generating answers: batched greedy decoding and the scorers built on it.

:func:`generate_texts` decodes greedily (``do_sample=False``, one beam) in left-padded batches
sorted by ``(has image, prompt length)``, so a batch carries little padding; each row stops at
EOS or after ``max_new_tokens``; the decoded new tokens come back in input order, stripped of
surrounding whitespace. Greedy decoding has no randomness: the same inputs give the same text.

Scorers over generated text:

- :func:`generate_mcq` — our prompt (:func:`pulse.eval.prompts.item_prompt`) and the judge-free
  extraction of :mod:`pulse.eval.extract`;
- :func:`mllmu_mcq` — the ``mllmu`` compatibility profile: MLLMU-Bench's few-shot prompt text
  (:func:`pulse.eval.prompts.mllmu_prompt`) and its first-character verdict
  (:func:`pulse.eval.extract.mllmu_verdict`). The public tool generates one sample at a time;
  batching changes nothing but speed. The few-shot pool must not share an entity with the
  items under evaluation (the public tool drew it from the evaluated split itself);
- :func:`score_cloze` — cloze verdict: the gold answer is a case-insensitive substring;
- :func:`score_generation` — ROUGE-1 / 2 / L F1 (stemmed); a record's ``score`` is ROUGE-L.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pulse.data.schema import ItemKind, Modality, QAItem
from pulse.eval.batching import (
    eval_mode,
    length_order,
    model_device,
    progress,
    tokenizer_of,
)
from pulse.eval.extract import explain_choice, mllmu_verdict
from pulse.eval.prompts import (
    FewShotExample,
    cloze_prompt,
    generation_prompt,
    item_prompt,
    mllmu_prompt,
)
from pulse.eval.records import ItemRecord
from pulse.eval.sizes import check_context, prompt_tokens, token_batches
from pulse.eval.text_metrics import cloze_verdict, rouge_f1
from pulse.models.chat import ChatExample, encode_prompts


@dataclass(frozen=True)
class GenConfig:
    batch_size: int = 16
    max_new_tokens: int = 50  # MLLMU-Bench's budget for every task
    progress: bool = False


@torch.inference_mode()
def generate_texts(
    model: nn.Module,
    processor: Any,
    examples: Sequence[ChatExample],
    cfg: GenConfig | None = None,
    names: Sequence[str] | None = None,
) -> list[str]:
    """Greedy answers to ``examples`` (question + optional image), in input order. A prompt
    that cannot fit the model's context with ``max_new_tokens`` after it is refused in one line
    naming its item (``names``, else its position); batches are bounded in tokens as well as
    rows (:mod:`pulse.eval.sizes`)."""
    cfg = cfg or GenConfig()
    if cfg.max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be positive, got {cfg.max_new_tokens}")
    if not examples:
        return []
    tokenizer = tokenizer_of(processor)
    has_image = [e.image is not None for e in examples]
    order = length_order(processor, [e.question for e in examples], has_image)
    lengths = prompt_tokens(processor, [e.question for e in examples], has_image)
    check_context(
        model,
        names or [f"#{k + 1}" for k in range(len(examples))],
        [n + cfg.max_new_tokens for n in lengths],
        f"{cfg.max_new_tokens} new tokens",
    )
    device = model_device(model)
    texts: dict[int, str] = {}
    batches = token_batches(order, [n + cfg.max_new_tokens for n in lengths], cfg.batch_size)
    with eval_mode(model):
        for batch in progress(batches, cfg.progress, "generating"):
            inputs = encode_prompts(processor, [examples[i] for i in batch]).to(device)
            out = model.generate(
                **inputs,
                do_sample=False,
                num_beams=1,
                max_new_tokens=cfg.max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
            )
            # Left padding: every row's prompt ends at the same column, new tokens follow it.
            new = out[:, inputs["input_ids"].shape[1] :]
            decoded = tokenizer.batch_decode(new, skip_special_tokens=True)
            for i, text in zip(batch, decoded, strict=True):
                texts[i] = text.strip()
    return [texts[i] for i in range(len(examples))]


def _check_kind(items: Sequence[QAItem], kind: ItemKind, who: str) -> None:
    wrong = next((i for i in items if i.kind is not kind), None)
    if wrong is not None:
        raise ValueError(f"{who} takes {kind.value} items only; {wrong.id} is {wrong.kind.value}")


def _answers(model, processor, items: Sequence[QAItem], prompts: list[str], cfg: GenConfig):
    examples = [ChatExample(p, image=i.image) for p, i in zip(prompts, items, strict=True)]
    return generate_texts(model, processor, examples, cfg, names=[i.id for i in items])


def generate_mcq(
    model: nn.Module, processor: Any, items: Sequence[QAItem], cfg: GenConfig | None = None
) -> list[ItemRecord]:
    """Multiple choice by generation + judge-free extraction; no answer found is wrong."""
    _check_kind(items, ItemKind.MCQ, "generate_mcq")
    responses = _answers(
        model, processor, items, [item_prompt(i) for i in items], cfg or GenConfig()
    )
    records = []
    for item, response in zip(items, responses, strict=True):
        found = explain_choice(response, item.options)
        records.append(
            _record(
                item,
                found.letter,
                correct=found.letter == item.answer,
                extras={"response": response, "rule": found.rule, **item.meta},
            )
        )
    return records


def fewshot_pool(items: Sequence[QAItem]) -> list[FewShotExample]:
    """Solved examples for :func:`mllmu_prompt` from multiple-choice items."""
    return [FewShotExample(i.question, i.options, i.answer, i.id, i.entity_id) for i in items]


def mllmu_prompts(
    items: Sequence[QAItem], pool: Sequence[QAItem], *, seed: int = 0, shots: int = 1
) -> list[str]:
    """Each item's few-shot prompt: a function of the item, ``seed`` and ``pool`` alone (not of
    the other items evaluated with it). Examples come from the pool items of the item's own
    modality (all of the pool when it has none of that modality), never of the item's own
    entity (its answers), seeded by ``(seed, item id)``."""
    by_modality = {m: fewshot_pool([p for p in pool if p.modality is m]) for m in Modality}
    everything = fewshot_pool(pool)
    prompts = []
    for item in items:
        candidates = by_modality[item.modality] or everything
        prompts.append(
            mllmu_prompt(
                item.question,
                item.options,
                pool=[ex for ex in candidates if ex.entity != item.entity_id],
                seed=seed,
                key=item.id,
                shots=shots,
            )
        )
    return prompts


def mllmu_mcq(
    model: nn.Module,
    processor: Any,
    items: Sequence[QAItem],
    pool: Sequence[QAItem],
    cfg: GenConfig | None = None,
    *,
    seed: int = 0,
    shots: int = 1,
) -> list[ItemRecord]:
    """MLLMU-Bench's MCQ protocol: few-shot prompt, greedy answer, first-character verdict.

    Each item's prompt: :func:`mllmu_prompts` (the same whatever else is evaluated).
    """
    _check_kind(items, ItemKind.MCQ, "mllmu_mcq")
    _check_kind(pool, ItemKind.MCQ, "the mllmu few-shot pool")
    prompts = mllmu_prompts(items, pool, seed=seed, shots=shots)
    responses = _answers(model, processor, items, prompts, cfg or GenConfig())
    records = []
    for item, response in zip(items, responses, strict=True):
        head = response[:1].upper()
        records.append(
            _record(
                item,
                head if head in item.options else None,
                correct=mllmu_verdict(response, item.answer),
                extras={"response": response, **item.meta},
            )
        )
    return records


def score_cloze(
    model: nn.Module, processor: Any, items: Sequence[QAItem], cfg: GenConfig | None = None
) -> list[ItemRecord]:
    """Fill-in-the-blank: correct when the gold answer is a substring of the response."""
    _check_kind(items, ItemKind.CLOZE, "score_cloze")
    prompts = [cloze_prompt(i.question) for i in items]
    responses = _answers(model, processor, items, prompts, cfg or GenConfig())
    return [
        _record(i, r, correct=cloze_verdict(r, i.answer), extras={**i.meta})
        for i, r in zip(items, responses, strict=True)
    ]


def score_generation(
    model: nn.Module, processor: Any, items: Sequence[QAItem], cfg: GenConfig | None = None
) -> list[ItemRecord]:
    """Open generation: ROUGE F1 against the ground truth; ``score`` is ROUGE-L."""
    _check_kind(items, ItemKind.GENERATION, "score_generation")
    prompts = [generation_prompt(i.question, i.modality.value) for i in items]
    responses = _answers(model, processor, items, prompts, cfg or GenConfig())
    records = []
    for item, response in zip(items, responses, strict=True):
        rouge = rouge_f1(response, item.answer)
        records.append(
            _record(item, response, score=rouge["rougeL"], extras={**rouge, **item.meta})
        )
    return records


def _record(
    item: QAItem,
    prediction: str | None,
    *,
    correct: bool | None = None,
    score: float | None = None,
    extras: dict[str, Any],
) -> ItemRecord:
    return ItemRecord(
        item_id=item.id,
        entity_id=item.entity_id,
        kind=item.kind,
        modality=item.modality,
        prediction=prediction,
        gold=item.answer,
        correct=correct,
        score=score,
        extras=extras,
    )
