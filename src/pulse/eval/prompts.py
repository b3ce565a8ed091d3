"""Prompt builders for multiple-choice questions: the *user text* only.

Image placeholders and chat roles (``USER: <image>\\n ... ASSISTANT:``) are added by the model
layer, so one builder serves every model family.

Profiles:

- ``mmbench``: the common MMBench prompt (LLaVA's evaluation script)::

      {hint}
      {question}
      A. {A}
      B. {B}
      Answer with the option's letter from the given choices directly.

  The hint line is omitted when the hint is empty, None, NaN, ``"nan"`` or ``"none"``; blank
  options are dropped (letters are not re-assigned).
- ``default`` (our PULSE items): the same layout without a hint — the question, one option per line
  as ``A. text``, then the same instruction line.
- ``mllmu``: MLLMU-Bench's published layout, options as ``A: text`` and the instruction
  ``Just give ONE letter representing the answer directly.``, preceded by few-shot examples
  (``Question: ...``, options, ``Correct Answer: X``). The public tool drew its example with an
  unseeded ``random.sample`` from the split under evaluation itself — on the forget set, the
  example leaks a forget answer into the prompt. Here the example comes from a pool the caller
  provides (one that excludes the forget set) and from a RNG seeded by ``(seed, key)``: each item
  gets the same example whatever the evaluation order or batch size.

Open questions (MLLMU-Bench's published instructions, zero-shot here):

- ``cloze``: the question with ``__`` written as ``[Blank]``, then
  ``Please **ONLY** provide the correct answer that should replace the [Blank].``
- ``generation``: the question, then ``Answer the question based on your trained knowledge in one
  sentence accurately in ENGLISH.`` (text-only questions: ``... in one sentence in ENGLISH.``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pulse.data.schema import QAItem
from pulse.eval.options import clean_options, is_blank

MMBENCH_INSTRUCTION = "Answer with the option's letter from the given choices directly."
MLLMU_INSTRUCTION = "Just give ONE letter representing the answer directly."
CLOZE_INSTRUCTION = "Please **ONLY** provide the correct answer that should replace the [Blank]."
GENERATION_INSTRUCTIONS = {
    "multimodal": "Answer the question based on your trained knowledge in one sentence accurately "
    "in ENGLISH.",
    "text": "Answer the question based on your trained knowledge in one sentence in ENGLISH.",
}


def mmbench_prompt(question: str, options: Mapping[str, object], hint: object = None) -> str:
    """The MMBench common prompt (see the module docstring for the exact layout)."""
    lines = [] if _blank_hint(hint) else [str(hint)]
    lines.append(question)
    lines.extend(_option_lines(options, ". "))
    lines.append(MMBENCH_INSTRUCTION)
    return "\n".join(lines)


def mcq_prompt(question: str, options: Mapping[str, object]) -> str:
    """Our default prompt for PULSE items: question, ``A. text`` lines, instruction."""
    return mmbench_prompt(question, options)


def item_prompt(item: QAItem) -> str:
    """The user text of a multiple-choice item (hint line first when the item has one): what
    every scorer asks, by likelihood or by generation."""
    return mmbench_prompt(item.question, item.options, item.meta.get("hint"))


@dataclass(frozen=True)
class FewShotExample:
    """One solved question for the ``mllmu`` profile's few-shot prefix."""

    question: str
    options: Mapping[str, str]
    answer: str
    id: str = ""  # for a stable order of the pool; e.g. the item id
    entity: str = ""  # whose example it is: never drawn for an item of the same entity


def mllmu_prompt(
    question: str,
    options: Mapping[str, object],
    *,
    pool: Sequence[FewShotExample],
    seed: int,
    key: str,
    shots: int = 1,
) -> str:
    """MLLMU-Bench's prompt with ``shots`` examples drawn from ``pool``::

        Question: {example question}
        A: ..
        B: ..
        Correct Answer: {example answer}
        {question}
        A: ..
        B: ..
        Just give ONE letter representing the answer directly.

    ``key`` (e.g. the item id) and ``seed`` fix the draw; the pool's order does not matter. An
    example with the same question text as the one asked is never drawn.
    """
    candidates = sorted(
        (ex for ex in pool if ex.question != question),
        key=lambda ex: (ex.id, ex.question, ex.answer, sorted(ex.options.items())),
    )
    if len(candidates) < shots:
        raise ValueError(f"few-shot pool has {len(candidates)} usable examples, need {shots}")
    # A string seed is hashed with SHA-512 by `random`, so the draw is the same in every process.
    rng = random.Random(f"{seed}:{key}")
    lines: list[str] = []
    for ex in rng.sample(candidates, shots):
        lines.append(f"Question: {ex.question}")
        lines.extend(_option_lines(ex.options, ": "))
        lines.append(f"Correct Answer: {ex.answer}")
    lines.append(question)
    lines.extend(_option_lines(options, ": "))
    lines.append(MLLMU_INSTRUCTION)
    return "\n".join(lines)


def cloze_prompt(question: str) -> str:
    """MLLMU-Bench's fill-in-the-blank prompt (the blank ``__`` shown as ``[Blank]``)."""
    return f"{question.replace('__', '[Blank]')}\n{CLOZE_INSTRUCTION}"


def generation_prompt(question: str, modality: str) -> str:
    """MLLMU-Bench's open-generation prompt; ``modality`` is ``multimodal`` or ``text``."""
    if modality not in GENERATION_INSTRUCTIONS:
        raise ValueError(f"modality must be multimodal or text, got {modality!r}")
    return f"{question}\n{GENERATION_INSTRUCTIONS[modality]}"


def _option_lines(options: Mapping[str, object], sep: str) -> list[str]:
    cleaned = clean_options(options)
    if not cleaned:
        raise ValueError("a multiple-choice prompt needs at least one non-empty option")
    return [f"{letter}{sep}{text}" for letter, text in cleaned.items()]


def _blank_hint(hint: object) -> bool:
    # LLaVA's MMBench script also treats the string "none" as a missing hint.
    return is_blank(hint) or (isinstance(hint, str) and hint.strip().lower() == "none")
