"""Multiple-choice evaluation with a model, by scorer name.

- ``letter``: one left-padded forward per batch of prompts, reading only the last
  position's logits (``logits_to_keep=1``), where the answer's first token would be generated.
  The prediction is the valid option letter with the highest log-probability (see
  :mod:`pulse.eval.scoring`).
- ``option_text`` (the default, :data:`~pulse.eval.scorers.DEFAULT_SCORER`): each option's
  text is scored as the answer, ``s_o = (1/|o|) sum_t log
  p(o_t | prompt, o_<t)`` over its tokens (no EOS). Each item's prompt (image included) runs
  once: a left-padded batch of prompts, one forward with ``use_cache=True`` whose last logits
  give every option's first token; the KV cache is then repeated to one row per option and one
  more forward over the options' remaining tokens (right-padded, attention mask = the prompt's
  repeated then the options', no image inputs) gives the rest. The option tokens are the tail of
  the tokenized prompt + option text, as a training batch labels them, and the prompt tokens the
  rest. An item where that split is not the prompt's own tokenization (a token straddling the
  boundary), and a model whose positions a continuation would not reproduce (Qwen2-VL's
  multimodal rope), are scored the direct way: one row per (item, option) holding the whole
  prompt and the option, left-padded so every option ends its row, with only the last
  ``max |o| + 1`` positions' logits computed. Both give the same scores (to float rounding);
  ``batch_size`` counts (item, option) rows in both, so the repeated cache holds at most that
  many rows of prompt keys and values.
- ``generate`` / ``mllmu``: greedy generation, see :mod:`pulse.eval.generation`.

Rows (items, for shared prompts) are sorted by ``(has image, prompt length)`` so batches carry
little padding; results come back in input order, one :class:`~pulse.eval.records.ItemRecord`
per item. On an accelerator the next batch is encoded in a worker thread while the model runs
(:func:`~pulse.eval.batching.prefetch`); the scores are the same either way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from pulse.data.schema import OPTION_LETTERS, ItemKind, QAItem
from pulse.errors import ConfigError, ModelError
from pulse.eval.batching import (
    eval_mode,
    length_order,
    model_device,
    order_by_length,
    overlap_default,
    prefetch,
    progress,
    tokenizer_of,
)
from pulse.eval.encodings import EncodingCache
from pulse.eval.generation import GenConfig, generate_mcq, mllmu_mcq
from pulse.eval.prompts import item_prompt
from pulse.eval.records import ItemRecord
from pulse.eval.scorers import DEFAULT_SCORER, check_scorer
from pulse.eval.scoring import (
    ChoiceScores,
    answer_logprob,
    score_letter_logits,
    score_option_texts,
    token_logprobs,
)
from pulse.eval.sizes import check_context, image_overhead, prompt_tokens, token_batches
from pulse.models.chat import (
    ChatCollator,
    ChatExample,
    encode_prompts,
    format_prompt,
    prompt_length,
)
from pulse.models.collective import sharded

V = TypeVar("V")


@dataclass(frozen=True)
class MCQConfig:
    """``batch_size`` counts rows: prompts for ``letter`` and generation, (item, option) pairs
    for ``option_text`` (a batch of shared prompts holds as many items as have that many options
    in all, at least one: ``batch_size // n_options`` items of ``n_options`` each, since the
    repeated KV cache has one row per option). ``max_new_tokens`` concerns generation; ``seed``
    and ``shots`` the ``mllmu`` few-shot draw. ``overlap`` (encode ahead in a thread) defaults
    to on for a model on an accelerator, off on the CPU, where the forward already uses every
    core."""

    batch_size: int = 32
    progress: bool = False
    scorer: str = DEFAULT_SCORER
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


def score_mcq(
    model: nn.Module,
    processor: Any,
    items: Sequence[QAItem],
    cfg: MCQConfig | None = None,
    *,
    pool: Sequence[QAItem] | None = None,
    cache: EncodingCache | None = None,
    shard: bool = False,
) -> list[ItemRecord]:
    """Score multiple-choice ``items`` with ``cfg.scorer``; one record per item, in order.

    ``pool`` holds the few-shot items of the ``mllmu`` scorer (none of the evaluated entities).
    ``cache`` keeps the ``letter`` and ``option_text`` scorers' encodings for the next model
    scored on the same items (see :mod:`pulse.eval.encodings`). ``shard``: in a launched run
    of several processes (every one calling this on the same items), each scores a block of
    the items and every process gets all the records (an item's record depends on the item
    alone, so the same records to float rounding).
    """
    if shard:
        return sharded(
            items, lambda part: score_mcq(model, processor, part, cfg, pool=pool, cache=cache)
        )
    cfg = cfg or MCQConfig()
    check_scorer(cfg.scorer)
    if any(item.kind is not ItemKind.MCQ for item in items):
        raise ValueError("score_mcq takes multiple-choice items only")
    _check_sizes(model, processor, items, cfg, cache)
    if cfg.scorer == "letter":
        return score_letters(model, processor, items, cfg, cache=cache)
    if cfg.scorer == "option_text":
        return score_options(model, processor, items, cfg, cache=cache)
    gen = GenConfig(cfg.batch_size, cfg.max_new_tokens, cfg.progress)
    if cfg.scorer == "generate":
        return generate_mcq(model, processor, items, gen)
    if pool is None:
        raise ConfigError("the mllmu scorer needs a few-shot pool (items of other entities)")
    return mllmu_mcq(model, processor, items, pool, gen, seed=cfg.seed, shots=cfg.shots)


def _check_sizes(
    model: nn.Module,
    processor: Any,
    items: Sequence[QAItem],
    cfg: MCQConfig,
    cache: EncodingCache | None = None,
) -> None:
    """Every item fits the model's context with what its scorer adds after the prompt (see
    :mod:`pulse.eval.sizes`): refused in one line naming it, before any forward."""
    if not items or cfg.scorer == "mllmu":  # its few-shot prompts are checked where generated
        return
    lengths = _prompt_lengths(processor, items, cache)
    if cfg.scorer == "letter":
        after, extra = "the answer's letter", [1] * len(items)
    elif cfg.scorer == "generate":
        after, extra = f"{cfg.max_new_tokens} new tokens", [cfg.max_new_tokens] * len(items)
    else:
        after = "its longest option"
        extra = _Kept.of(cache, processor, items, "sizes").value(
            "longest_option", lambda: _longest_options(processor, items)
        )
    totals = [n + e for n, e in zip(lengths, extra, strict=True)]
    check_context(model, [item.id for item in items], totals, after)


def _prompt_lengths(
    processor: Any, items: Sequence[QAItem], cache: EncodingCache | None
) -> list[int]:
    """Each item's prompt length in tokens as the model sees it (kept in ``cache``: the size
    check and the letter scorer read the same lengths for every model state)."""
    return _Kept.of(cache, processor, items, "sizes").value(
        "prompt_tokens",
        lambda: prompt_tokens(
            processor,
            [item_prompt(item) for item in items],
            [item.image is not None for item in items],
        ),
    )


def _longest_options(processor: Any, items: Sequence[QAItem]) -> list[int]:
    """Per item, its longest option's tokens."""
    tokenizer = tokenizer_of(processor)
    texts = [text for item in items for text in item.options.values()]
    counts = iter(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    return [max(next(counts) for _ in item.options) for item in items]


@torch.inference_mode()
def score_letters(
    model: nn.Module,
    processor: Any,
    items: Sequence[QAItem],
    cfg: MCQConfig | None = None,
    *,
    cache: EncodingCache | None = None,
) -> list[ItemRecord]:
    """The ``letter`` scorer (see the module docstring)."""
    cfg = cfg or MCQConfig()
    if not items:
        return []
    kept = _Kept.of(cache, processor, items, "letter")
    letter_ids = letter_token_ids(processor, sorted({k for item in items for k in item.options}))
    prompts = [item_prompt(item) for item in items]
    lengths = _prompt_lengths(processor, items, cache)
    order = order_by_length(lengths, [item.image is not None for item in items])
    device = model_device(model)
    records: dict[int, ItemRecord] = {}

    def encode(batch: list[int]) -> Any:
        return encode_prompts(
            processor, [ChatExample(prompts[i], image=items[i].image) for i in batch]
        )

    encode = kept.per_batch("batch", encode)
    batches = token_batches(order, lengths, cfg.batch_size)
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
    model: nn.Module,
    processor: Any,
    items: Sequence[QAItem],
    cfg: MCQConfig | None = None,
    *,
    share_prompts: bool = True,
    cache: EncodingCache | None = None,
) -> list[ItemRecord]:
    """The ``option_text`` scorer (see the module docstring).

    With ``share_prompts`` (the default) each item's prompt is encoded and run once and its KV
    cache is repeated for the item's options (:func:`_shared_prompt_means`); items where that
    could change a score, and models that cannot continue from a repeated cache
    (:func:`shares_prompt_cache`), take the per-row path (:func:`_per_row_means`), which
    ``share_prompts=False`` forces for every item. ``cfg.batch_size`` counts (item, option)
    rows on both paths: the per-row forwards hold that many prompt + option rows; the cached
    path runs prompts of as many items as fit in that many options (at least one item), so its
    repeated cache holds at most ``batch_size`` rows of prompt keys and values.
    """
    cfg = cfg or MCQConfig()
    if not items:
        return []
    kept = _Kept.of(cache, processor, items, "option_text")
    plan = kept.value("plan", lambda: _option_rows(processor, items))
    means: list[dict[str, float]] = [{} for _ in items]
    rest = list(range(len(items)))
    if share_prompts and shares_prompt_cache(model):
        rest = _shared_prompt_means(
            model, processor, plan, [i for i in rest if plan.shared[i]], cfg, means, kept
        )
        rest = sorted({*rest, *(i for i in range(len(items)) if not plan.shared[i])})
    if rest:
        rows = [r for i in rest for r in plan.item_rows[i]]
        _per_row_means(model, processor, plan, rows, cfg, means, kept)
    scores = score_option_texts(means, [item.answer for item in items])
    records = _records(items, range(len(items)), scores, key="mean_logprobs", raw=means)
    return [records[i] for i in range(len(items))]


def shares_prompt_cache(model: nn.Module) -> bool:
    """Whether ``option_text`` may run each prompt once and continue every option from its
    repeated KV cache.

    Not for a model that computes its positions from the attention mask and keeps state between
    forwards (Qwen2-VL's multimodal rope: ``get_rope_index`` and the stored ``rope_deltas``); a
    continuation of a repeated cache would get other positions than the full row does.
    """
    return not any(
        hasattr(module, "rope_deltas") or hasattr(module, "get_rope_index")
        for module in model.modules()
    )


@dataclass(frozen=True)
class _OptionRows:
    """One row per (item, option), items in order and letters sorted: the texts the per-row
    path encodes and each option's tokens (the tail of the tokenized full text); per item, its
    rows, its tokenized prompt, and whether that prompt can be shared by its options."""

    item_ids: list[str]
    rows: list[tuple[int, str]]
    prompts: list[str]
    fulls: list[str]
    images: list[Any]
    answers: list[list[int]]
    item_rows: list[list[int]]
    prompt_ids: list[list[int]]
    # The prompt's tokens after its last image placeholder (all of them without an image): how
    # the processor's encoding of the prompt must end.
    prompt_tails: list[list[int]]
    shared: list[bool]


def _option_rows(processor: Any, items: Sequence[QAItem]) -> _OptionRows:
    collator = ChatCollator(processor, add_eos=False)
    # One prompt (template, image) per item, shared by its options; every text tokenized in
    # one batched call.
    item_prompts, _, item_images = collator.texts(
        [ChatExample(item_prompt(item), "", item.image) for item in items]
    )
    rows = [(i, letter) for i, item in enumerate(items) for letter in sorted(item.options)]
    prompts = [item_prompts[i] for i, _ in rows]
    fulls = [collator.full_text(item_prompts[i], items[i].options[letter], i) for i, letter in rows]
    images = [item_images[i] for i, _ in rows]
    prompt_ids = collator.token_ids(item_prompts)
    full_ids = collator.token_ids(fulls)
    answers = [
        f_ids[prompt_length(prompt_ids[i], f_ids) :]
        for (i, _), f_ids in zip(rows, full_ids, strict=True)
    ]
    item_rows: list[list[int]] = [[] for _ in items]
    for r, (i, _) in enumerate(rows):
        item_rows[i].append(r)
    tails, shared = [], []
    placeholder = collator.image_token_id
    for i, rs in enumerate(item_rows):
        p_ids = prompt_ids[i]
        tail = p_ids
        if item_images[i] is not None and placeholder is not None and placeholder in p_ids:
            tail = p_ids[len(p_ids) - p_ids[::-1].index(placeholder) :]
        # Prompt tokens then option tokens are the full text's tokens only when no token
        # straddles the boundary (a BPE merge); otherwise the item takes the per-row path.
        shared.append(
            all(answers[r] and len(full_ids[r]) - len(answers[r]) == len(p_ids) for r in rs)
        )
        tails.append(tail)
    return _OptionRows(
        [item.id for item in items],
        rows,
        prompts,
        fulls,
        images,
        answers,
        item_rows,
        prompt_ids,
        tails,
        shared,
    )


@dataclass(frozen=True)
class _Continuations:
    """The options of a batch of prompts, one row per option: ``index`` its prompt's row,
    ``first`` its first token (scored from the prompt forward's last logits), and the rest
    right-padded: ``inputs`` (tokens ``0 .. n-2``) predict ``targets`` (tokens ``1 .. n-1``)
    where ``mask`` is set; ``lengths`` are the option token counts ``n``."""

    rows: list[int]
    index: torch.Tensor
    first: torch.Tensor
    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor


def _continuations(plan: _OptionRows, batch: Sequence[int], pad: int) -> _Continuations:
    rows = [r for i in batch for r in plan.item_rows[i]]
    index = [b for b, i in enumerate(batch) for _ in plan.item_rows[i]]
    width = max(len(plan.answers[r]) for r in rows) - 1
    inputs = torch.full((len(rows), width), pad, dtype=torch.long)
    targets = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, r in enumerate(rows):
        answer = plan.answers[r]
        n = len(answer) - 1
        inputs[k, :n] = torch.tensor(answer[:-1], dtype=torch.long)
        targets[k, :n] = torch.tensor(answer[1:], dtype=torch.long)
        mask[k, :n] = 1
    return _Continuations(
        rows,
        torch.tensor(index, dtype=torch.long),
        torch.tensor([plan.answers[r][0] for r in rows], dtype=torch.long),
        inputs,
        targets,
        mask,
        torch.tensor([len(plan.answers[r]) for r in rows], dtype=torch.float32),
    )


def _item_batches(
    order: Sequence[int], sizes: Sequence[int], rows: int, lengths: Sequence[int] | None = None
) -> list[list[int]]:
    """Consecutive items of ``order`` holding at most ``rows`` options in all (at least one
    item per batch) and, given the items' row ``lengths``, at most ``rows x ROW_TOKENS``
    padded tokens (:func:`pulse.eval.sizes.token_batches`)."""
    return token_batches(order, lengths or [0] * len(sizes), rows, weights=sizes)


def _row_length(plan: _OptionRows, row: int, overhead: int) -> int:
    """A (item, option) row's tokens: prompt, image tokens and option."""
    i = plan.rows[row][0]
    image = overhead if plan.images[row] is not None else 0
    return len(plan.prompt_ids[i]) + image + len(plan.answers[row])


def _shared_prompt_means(
    model: nn.Module,
    processor: Any,
    plan: _OptionRows,
    item_ids: Sequence[int],
    cfg: MCQConfig,
    means: list[dict[str, float]],
    kept: _Kept,
) -> list[int]:
    """Option means of ``item_ids`` from one prompt forward per item plus one continuation
    forward over its options' tokens; fills ``means`` and returns the items it could not score
    this way (for the per-row path).

    The prompts of a batch are left-padded and run once with ``use_cache=True``; the last
    position's logits give each option's first token. The cache is then repeated to one row
    per option (``batch_select_indices``) and the options' remaining tokens, right-padded, run
    in one forward against it: attention mask = the prompt's mask, repeated, then the options'
    mask; no image inputs. Positions continue from the padded prompt length, as the per-row
    path's left-padded rows count them.
    """
    tokenizer = tokenizer_of(processor)
    pad = tokenizer.pad_token_id
    has_image = [plan.images[plan.item_rows[i][0]] is not None for i in range(len(plan.shared))]
    order = sorted(item_ids, key=lambda i: (has_image[i], len(plan.prompt_ids[i]), i))
    sizes = [len(rs) for rs in plan.item_rows]
    device = model_device(model)
    left: list[int] = []

    def encode(batch: list[int]) -> tuple[Any, _Continuations]:
        firsts = [plan.item_rows[i][0] for i in batch]
        inputs = processor(
            text=[plan.prompts[r] for r in firsts],
            images=[plan.images[r] for r in firsts if plan.images[r] is not None] or None,
            padding=True,
            padding_side="left",
            add_special_tokens=_add_special(tokenizer, plan.fulls[firsts[0]]),
            return_tensors="pt",
        )
        return inputs, _continuations(plan, batch, pad)

    encode = kept.per_batch("shared", encode)
    overhead = image_overhead(processor) if any(has_image) else 0
    lengths = [
        max((_row_length(plan, r, overhead) for r in rs), default=0) for rs in plan.item_rows
    ]
    batches = _item_batches(order, sizes, cfg.batch_size, lengths)
    with eval_mode(model):
        encoded = prefetch(encode, batches, overlap=_overlap(cfg, device))
        for batch, (inputs, cont) in progress(
            encoded, cfg.progress, "scoring options", len(batches)
        ):
            ids, prompt_mask = inputs["input_ids"], inputs["attention_mask"]
            if any(
                key not in ("input_ids", "attention_mask")
                and isinstance(value, torch.Tensor)
                and value.shape == ids.shape
                for key, value in inputs.items()
            ):
                # A per-token input (e.g. token types) would have to be continued too.
                left.extend(batch)
                continue
            # The processor's prompt must end as the tokenizer's does (image expansion only
            # inserts tokens before); an item where it does not takes the per-row path.
            usable = {
                i: _ends_with(ids[b][prompt_mask[b].bool()].tolist(), plan.prompt_tails[i])
                for b, i in enumerate(batch)
            }
            inputs = inputs.to(device)
            out = model(**inputs, logits_to_keep=1, use_cache=True)
            cache = out.past_key_values
            if cache is None or not hasattr(cache, "batch_select_indices"):
                left.extend(batch)
                continue
            index = cont.index.to(device)
            first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
            total = first[index, cont.first.to(device)]
            del out, first
            if cont.inputs.shape[1]:
                cache.batch_select_indices(index)
                mask = cont.mask.to(device)
                logits = model(
                    input_ids=cont.inputs.to(device),
                    attention_mask=torch.cat([inputs["attention_mask"][index], mask], dim=1),
                    past_key_values=cache,
                    use_cache=True,
                ).logits
                lp = torch.log_softmax(logits.float(), dim=-1)
                lp = lp.gather(-1, cont.targets.to(device).unsqueeze(-1)).squeeze(-1)
                total = total + (lp * mask).sum(dim=1)
                del logits, lp
            del cache
            mean = (total / cont.lengths.to(device)).tolist()
            for r, value in zip(cont.rows, mean, strict=True):
                i, letter = plan.rows[r]
                if usable[i]:
                    means[i][letter] = value
            left.extend(i for i in batch if not usable[i])
    return left


def _ends_with(seq: Sequence[int], tail: Sequence[int]) -> bool:
    return len(seq) >= len(tail) and list(seq[len(seq) - len(tail) :]) == list(tail)


def _per_row_means(
    model: nn.Module,
    processor: Any,
    plan: _OptionRows,
    rows: Sequence[int],
    cfg: MCQConfig,
    means: list[dict[str, float]],
    kept: _Kept,
) -> None:
    """Option means of ``rows`` with one row per (item, option): the whole prompt, image
    included, then the option's tokens, left-padded so every option ends its row; only the
    last ``max |o| + 1`` positions' logits are computed. No KV cache. Fills ``means``."""
    tokenizer = tokenizer_of(processor)
    fulls, images, answers = plan.fulls, plan.images, plan.answers
    order = [
        rows[k]
        for k in length_order(
            processor, [fulls[r] for r in rows], [images[r] is not None for r in rows]
        )
    ]
    device = model_device(model)

    def encode(batch: list[int]) -> Any:
        return processor(
            text=[fulls[r] for r in batch],
            images=[images[r] for r in batch if images[r] is not None] or None,
            padding=True,
            padding_side="left",
            add_special_tokens=_add_special(tokenizer, fulls[batch[0]]),
            return_tensors="pt",
        )

    encode = kept.per_batch("rows", encode)
    overhead = image_overhead(processor) if any(images[r] is not None for r in rows) else 0
    lengths = {r: _row_length(plan, r, overhead) for r in rows}
    batches = [
        [order[k] for k in batch]
        for batch in token_batches(range(len(order)), [lengths[r] for r in order], cfg.batch_size)
    ]
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
                    i, letter = plan.rows[r]
                    raise ModelError(
                        f"item {plan.item_ids[i]}, option {letter}: the answer tokens "
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
                i, letter = plan.rows[r]
                means[i][letter] = value


@dataclass(frozen=True)
class _Kept:
    """What one scoring call may take from an :class:`EncodingCache` (nothing without one):
    values computed from the processor and the items alone, under this call's ``scope``."""

    cache: EncodingCache | None
    scope: int | None

    @classmethod
    def of(cls, cache: EncodingCache | None, processor: Any, items: Sequence[QAItem], kind: str):
        return cls(cache, cache.scope(processor, items, kind) if cache else None)

    def value(self, name: str, compute: Callable[[], V]) -> V:
        return compute() if self.cache is None else self.cache.get((self.scope, name), compute)

    def per_batch(self, name: str, encode: Callable[[list[int]], V]) -> Callable[[list[int]], V]:
        """``encode`` memoised by the batch's indices."""
        if self.cache is None:
            return encode
        cache, scope = self.cache, self.scope
        return lambda batch: cache.get((scope, name, tuple(batch)), lambda: encode(batch))


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
