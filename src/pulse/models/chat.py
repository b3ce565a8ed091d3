"""Prompts, training batches with answer-only labels, and left-padded prompt batches.

One formatting path for every family: the processor's chat template when it has one (a user turn
with an image content part when there is an image), else LLaVA-1.5's
``USER: <image>\\n{question} ASSISTANT:``. The answer follows the prompt, then the EOS token.

Labels count answer tokens (and EOS) only: prompt, image placeholders and padding are ``-100``.
The label boundary is the tokenized prompt's length within the tokenized prompt + answer
(tokenizer only, image placeholder un-expanded); the answer is that many tokens at the end of each
row of the processor's output. Image expansion only inserts special tokens inside the prompt, so
the tail tokenizes the same either way; this is checked on every batch, and it avoids running the
image processor twice.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from transformers import BatchFeature

from pulse.data.schema import decode_image
from pulse.errors import ModelError

IGNORE_INDEX = -100
MaybeImage = Image.Image | None
LLAVA_PROMPT = "USER: {image}{question} ASSISTANT:"


@dataclass(frozen=True)
class ChatExample:
    """One question / answer pair. ``image`` may be a PIL image or encoded image bytes.

    The collators also accept any object or mapping with ``question``, ``answer`` and ``image``
    (e.g. :class:`pulse.data.schema.TrainPair`).
    """

    question: str
    answer: str = ""
    image: Image.Image | bytes | None = None


def _fields(example: Any) -> tuple[str, str, Image.Image | None]:
    get = example.get if isinstance(example, Mapping) else lambda k, d=None: getattr(example, k, d)
    image = get("image", None)
    if isinstance(image, bytes | bytearray):
        image = decode_image(bytes(image))
    elif isinstance(image, Image.Image) and image.mode != "RGB":
        image = image.convert("RGB")
    return get("question"), get("answer", "") or "", image


def _tokenizer(processor: Any) -> Any:
    return getattr(processor, "tokenizer", processor)


def image_token(processor: Any) -> str:
    """The placeholder string the processor expands into image features."""
    token = getattr(processor, "image_token", None) or getattr(
        _tokenizer(processor), "image_token", None
    )
    return token or "<image>"


def _chat_template(processor: Any) -> str | None:
    return getattr(processor, "chat_template", None) or getattr(
        _tokenizer(processor), "chat_template", None
    )


def format_prompt(processor: Any, question: str, has_image: bool) -> str:
    """The text of one user turn, ready for generation (ends where the answer starts)."""
    if _chat_template(processor) is None:
        image = image_token(processor) + "\n" if has_image else ""
        return LLAVA_PROMPT.format(image=image, question=question)
    content: list[dict[str, str]] = [{"type": "image"}] if has_image else []
    content.append({"type": "text", "text": question})
    conversation = [{"role": "user", "content": content}]
    # The processor's template knows the image part; a bare tokenizer's template is tried too.
    templater = processor if getattr(processor, "chat_template", None) else _tokenizer(processor)
    return templater.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)


def _prompt(
    processor: Any, example: Any, index: int, render: Any = None
) -> tuple[str, str, MaybeImage]:
    """(prompt, answer, image) of one example; ``render(question, has_image)`` formats the
    prompt (default: :func:`format_prompt` with ``processor``)."""
    question, answer, image = _fields(example)
    _check_text(processor, question, index)
    _check_text(processor, answer, index)
    render = render or functools.partial(format_prompt, processor)
    return render(question, image is not None), answer, image


def _check_text(processor: Any, text: str, index: int) -> None:
    placeholder = image_token(processor)
    if placeholder in text:
        # The processor would count it as an image and fail with a mismatch deep inside.
        raise ModelError(
            f"example {index}: the text contains the image placeholder {placeholder!r}"
        )


def _answer_text(prompt: str, answer: str, eos: str | None) -> str:
    # "ASSISTANT:" is followed by " answer"; templates ending in a newline need no space.
    sep = "" if not prompt or prompt[-1].isspace() else " "
    return f"{sep}{answer}{eos or ''}"


def _add_special(tokenizer: Any, text: str) -> bool:
    # A template that already writes BOS must not get a second one from the tokenizer.
    bos = getattr(tokenizer, "bos_token", None)
    return not (bos and text.startswith(bos))


def _token_id(tokenizer: Any, token: str) -> int | None:
    """The id of ``token``, or None when the vocabulary lacks it (not the <unk> id)."""
    token_id = tokenizer.convert_tokens_to_ids(token)
    unk = getattr(tokenizer, "unk_token", None)
    if token_id is None or (token_id == tokenizer.unk_token_id and token != unk):
        return None
    return token_id


def prompt_length(prompt_ids: Sequence[int], full_ids: Sequence[int]) -> int:
    """Where the answer starts in ``full_ids``: the length of its common prefix with the
    tokenized prompt (shorter than the prompt when a token straddles the boundary)."""
    n = 0
    for x, y in zip(prompt_ids, full_ids, strict=False):
        if x != y:
            break
        n += 1
    return n


def _images(images: list[Image.Image | None]) -> list[Image.Image] | None:
    present = [img for img in images if img is not None]
    return present or None


def _prompt_cache(processor: Any) -> Any:
    return functools.lru_cache(maxsize=1 << 16)(functools.partial(format_prompt, processor))


class ChatCollator:
    """Turn examples into a training batch: model inputs plus answer-only ``labels``.

    Rows are right-padded. Batches may mix image and text-only examples (LLaVA, LLaVA-NeXT,
    Qwen2-VL and Idefics3 processors all accept one image list for the image rows only).
    Nothing is truncated: cutting a row would drop image placeholders or the answer.
    """

    def __init__(self, processor: Any, *, add_eos: bool = True) -> None:
        self.processor = processor
        self.tokenizer = _tokenizer(processor)
        if self.tokenizer.pad_token is None:
            # Labels are placed by position, so an EOS used as padding still counts as answer.
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.eos = self.tokenizer.eos_token if add_eos else None
        self.image_token_id = _token_id(self.tokenizer, image_token(processor))
        # Rendering the chat template is a Jinja call per example; training revisits the same
        # questions every epoch (a bounded cache: evaluation sets can be large).
        self._render = _prompt_cache(processor)

    def __getstate__(self) -> dict[str, Any]:
        # A cache does not pickle (data-loader workers started by spawn pickle the collator).
        return {k: v for k, v in self.__dict__.items() if k != "_render"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._render = _prompt_cache(self.processor)

    def texts(self, examples: Sequence[Any]) -> tuple[list[str], list[str], list[MaybeImage]]:
        """Prompts, full texts (prompt + answer + EOS) and images of ``examples``."""
        prompts, fulls, images = [], [], []
        for index, example in enumerate(examples):
            prompt, answer, image = _prompt(self.processor, example, index, self._render)
            prompts.append(prompt)
            fulls.append(prompt + _answer_text(prompt, answer, self.eos))
            images.append(image)
        return prompts, fulls, images

    def full_text(self, prompt: str, answer: str, index: int = 0) -> str:
        """The prompt followed by ``answer`` (and EOS when the collator adds it); ``index``
        names the example in an error."""
        _check_text(self.processor, answer, index)
        return prompt + _answer_text(prompt, answer, self.eos)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids as the collator encodes it (a BOS unless the text already
        starts with one), tokenized in one batched call: per-text calls cost most of an
        evaluation's time on a small model."""
        ids: list[list[int]] = [[] for _ in texts]
        by_flag: dict[bool, list[int]] = {}
        for k, text in enumerate(texts):
            by_flag.setdefault(_add_special(self.tokenizer, text), []).append(k)
        for special, rows in by_flag.items():
            encoded = self.tokenizer([texts[k] for k in rows], add_special_tokens=special)
            for k, row_ids in zip(rows, encoded["input_ids"], strict=True):
                ids[k] = row_ids
        return ids

    def answer_tokens(self, prompts: Sequence[str], fulls: Sequence[str]) -> list[list[int]]:
        """The token ids of each answer (with EOS), as they end the tokenized full text.

        The boundary is the tokenized prompt's length within the tokenized full text (their
        common prefix, in case a tokenizer merges across the boundary).
        """
        return [
            f_ids[prompt_length(p_ids, f_ids) :]
            for p_ids, f_ids in zip(self.token_ids(prompts), self.token_ids(fulls), strict=True)
        ]

    def __call__(self, examples: Sequence[Any]) -> BatchFeature:
        if not examples:
            raise ModelError("cannot collate an empty batch")
        prompts, fulls, images = self.texts(examples)
        batch = self.processor(
            text=fulls,
            images=_images(images),
            padding=True,
            padding_side="right",
            add_special_tokens=_add_special(self.tokenizer, fulls[0]),
            return_tensors="pt",
        )
        ids, mask = batch["input_ids"], batch["attention_mask"]
        labels = torch.full_like(ids, IGNORE_INDEX)
        for row, answer in enumerate(self.answer_tokens(prompts, fulls)):
            end = int(mask[row].sum())
            tail = ids[row, end - len(answer) : end]
            # The processor's row must end with the answer tokens the tokenizer gives alone.
            if not answer or tail.tolist() != answer:
                raise ModelError(
                    f"example {row}: the answer tokens differ between the processor and the "
                    "tokenizer, so the answer-only label mask cannot be placed"
                )
            labels[row, end - len(answer) : end] = tail
        if self.image_token_id is not None:
            labels[ids == self.image_token_id] = IGNORE_INDEX
        batch["labels"] = labels
        return batch


def example_lengths(processor: Any, examples: Sequence[Any]) -> list[int]:
    """Token counts of ``examples`` as the collator would encode them (prompt, answer, EOS), for
    grouping batches by length. Text is tokenized; an image's expansion into placeholder tokens
    is measured once, on the first image example, and added to every image example."""
    collator = ChatCollator(processor)
    _, fulls, images = collator.texts(examples)
    special = _add_special(collator.tokenizer, fulls[0]) if fulls else False
    lengths = [
        len(ids) for ids in collator.tokenizer(fulls, add_special_tokens=special)["input_ids"]
    ]
    first = next((k for k, image in enumerate(images) if image is not None), None)
    if first is not None:
        encoded = collator([examples[first]])["input_ids"].shape[1]
        expansion = encoded - lengths[first]
        lengths = [
            n + expansion if image is not None else n
            for n, image in zip(lengths, images, strict=True)
        ]
    return lengths


def answer_mask(labels: torch.Tensor) -> torch.Tensor:
    """Boolean mask of the positions a loss or metric may count."""
    return labels != IGNORE_INDEX


def encode_prompts(processor: Any, examples: Sequence[Any]) -> BatchFeature:
    """Left-padded prompt batch for generation or scoring at the last position.

    ``examples`` need a ``question`` and an optional ``image``; answers are ignored.
    """
    tokenizer = _tokenizer(processor)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not examples:
        raise ModelError("cannot encode an empty batch")
    prompts, images = [], []
    for index, example in enumerate(examples):
        prompt, _, image = _prompt(processor, example, index)
        prompts.append(prompt)
        images.append(image)
    return processor(
        text=prompts,
        images=_images(images),
        padding=True,
        padding_side="left",
        add_special_tokens=_add_special(tokenizer, prompts[0]),
        return_tensors="pt",
    )
