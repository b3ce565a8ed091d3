"""Multiple-choice evaluation with a model: the default letter scorer.

One left-padded forward per batch of prompts, reading only the last position's logits
(``logits_to_keep=1``), where the answer's first token would be generated. The prediction is the
valid option letter with the highest log-probability (see :mod:`pulse.eval.scoring`). Items are
sorted by prompt length so batches carry little padding; results come back in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pulse.data.schema import OPTION_LETTERS, ItemKind, QAItem
from pulse.eval.prompts import mmbench_prompt
from pulse.eval.records import ItemRecord
from pulse.eval.scoring import score_letter_logits
from pulse.models.chat import ChatCollator, ChatExample, encode_prompts, format_prompt


@dataclass(frozen=True)
class MCQConfig:
    batch_size: int = 32
    progress: bool = False


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


@torch.inference_mode()
def score_mcq(
    model: nn.Module, processor: Any, items: Sequence[QAItem], cfg: MCQConfig | None = None
) -> list[ItemRecord]:
    """Score multiple-choice ``items``; one record per item, in the order given."""
    cfg = cfg or MCQConfig()
    if any(item.kind is not ItemKind.MCQ for item in items):
        raise ValueError("score_mcq takes multiple-choice items only")
    letter_ids = letter_token_ids(processor, sorted({k for item in items for k in item.options}))
    tokenizer = getattr(processor, "tokenizer", processor)
    prompts = [item_prompt(item) for item in items]
    # Sort by prompt length (text tokens; images add the same count to each image row).
    order = sorted(range(len(items)), key=lambda i: (len(tokenizer(prompts[i])["input_ids"]), i))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    records: dict[int, ItemRecord] = {}
    batches = [order[k : k + cfg.batch_size] for k in range(0, len(order), cfg.batch_size)]
    for batch in _progress(batches, cfg.progress):
        examples = [ChatExample(prompts[i], image=items[i].image) for i in batch]
        inputs = encode_prompts(processor, examples).to(device)
        logits = model(**inputs, logits_to_keep=1).logits[:, -1, :]
        scores = score_letter_logits(
            logits,
            [{letter: letter_ids[letter] for letter in items[i].options} for i in batch],
            [items[i].answer for i in batch],
        )
        for j, i in enumerate(batch):
            item = items[i]
            records[i] = ItemRecord(
                item_id=item.id,
                entity_id=item.entity_id,
                kind=item.kind,
                modality=item.modality,
                prediction=scores.predicted[j],
                gold=item.answer,
                correct=scores.correct[j],
                extras={"logprobs": scores.log_probs[j], **item.meta},
            )
    model.train(was_training)
    return [records[i] for i in range(len(items))]


def _progress(batches: list, enabled: bool):
    if not enabled:
        return batches
    from tqdm.auto import tqdm

    return tqdm(batches, desc="scoring", unit="batch")
