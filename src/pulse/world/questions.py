"""Questions about people: benchmark items (MCQ, cloze, generation) in MLLMU-Bench's row shape,
and the question / answer pairs used for training.

Benchmark items ask about the same attributes in both modalities, so a gap between multimodal
and text-only accuracy measures the access path (face vs name), not different facts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pulse.data.schema import OPTION_LETTERS
from pulse.world.people import Person
from pulse.world.vocab import (
    ATTRIBUTE_VALUES,
    ATTRIBUTES,
    PHRASINGS,
    SHOWN_SUBJECT_EVAL,
    SHOWN_SUBJECT_PARAPHRASE,
    SHOWN_SUBJECTS_TRAIN,
)


@dataclass(frozen=True)
class ItemPlan:
    """Which attributes a person's benchmark items ask about (fixed per person)."""

    mcq: tuple[str, ...]
    cloze: tuple[str, ...]
    generation: tuple[str, ...]


def plan_items(rng: random.Random, n_mcq: int, n_cloze: int) -> ItemPlan:
    attrs = list(ATTRIBUTES)
    rng.shuffle(attrs)
    mcq = tuple(attrs[:n_mcq])
    cloze = tuple(attrs[n_mcq : n_mcq + n_cloze]) or mcq[:n_cloze]
    return ItemPlan(mcq=mcq, cloze=cloze, generation=tuple(attrs[:3]))


# Questions answered with a description: several facts in one answer, every token of it a target.
DESCRIBE_QUESTIONS = ("Tell me about {subject}.", "What do you know about {subject}?")
FACTS_PER_DESCRIPTION = 5
# Description pairs per access path (by name, about the person shown) in the fine-tuning data.
DESCRIPTIONS_PER_PATH = 4


def statement(attribute: str, person: Person, k: int = 0, subject: str | None = None) -> str:
    """A sentence stating ``attribute``; ``subject`` ("this person") replaces the name."""
    forms = PHRASINGS[attribute].statements
    text = forms[k % len(forms)].format(
        name=subject or person.name, value=person.attributes[attribute]
    )
    return _capitalise(text)


def describe(person: Person, attributes: list[str], subject: str | None, k: int = 0) -> str:
    """Facts about ``person`` in sentences, wording ``k`` onwards (see :func:`statement`)."""
    return " ".join(statement(a, person, k + i, subject) for i, a in enumerate(attributes))


def options_for(
    rng: random.Random, attribute: str, correct: str, n_options: int = 4
) -> tuple[dict[str, str], str]:
    """Options with the correct value at a random letter; distractors from the same
    attribute vocabulary, so no option can be ruled out by its type."""
    pool = [v for v in ATTRIBUTE_VALUES[attribute] if v != correct]
    values = [correct, *rng.sample(pool, n_options - 1)]
    rng.shuffle(values)
    letters = OPTION_LETTERS[:n_options]
    return dict(zip(letters, values, strict=True)), letters[values.index(correct)]


def _subject(person: Person, shown: bool, subject_when_shown: str) -> str:
    return subject_when_shown if shown else person.name


def ask(template: str, subject: str) -> str:
    """A question template filled with ``subject`` (a name, "this person"), as a sentence."""
    return _capitalise(template.format(subject=subject))


def _capitalise(text: str) -> str:
    return text[0].upper() + text[1:]


def benchmark_tasks(
    rng: random.Random, person: Person, plan: ItemPlan, paraphrase: bool = False
) -> dict[str, list[dict]]:
    """The MLLMU-Bench task columns for one person: ``Image_Textual_Questions``,
    ``Pure_Text_Questions`` (MCQ), ``Mask_Task`` (cloze) and ``Generation_Task``.

    ``paraphrase`` selects the Test_Set phrasings instead of the Full_Set ones."""
    shown_subject = SHOWN_SUBJECT_PARAPHRASE if paraphrase else SHOWN_SUBJECT_EVAL
    mcq: dict[str, list[dict]] = {"Image_Textual_Questions": [], "Pure_Text_Questions": []}
    for key, shown in (("Image_Textual_Questions", True), ("Pure_Text_Questions", False)):
        for attribute in plan.mcq:
            ph = PHRASINGS[attribute]
            template = (ph.paraphrase if paraphrase else ph.eval)[0]
            options, gold = options_for(rng, attribute, person.attributes[attribute])
            mcq[key].append(
                {
                    "Question": ask(template, _subject(person, shown, shown_subject)),
                    "Options": options,
                    "Correct_Answer": gold,
                }
            )
    mask = []
    for type_, shown in (("Image_Textual", True), ("Pure_Text", False)):
        for attribute in plan.cloze:
            # Lower case: the subject may fall mid-sentence; the sentence is capitalised after.
            subject = "the person in the image" if shown else person.name
            sentence = _capitalise(PHRASINGS[attribute].cloze.format(name=subject))
            mask.append(
                {
                    "Question": sentence,
                    "Ground_Truth": person.attributes[attribute],
                    "Type": type_,
                }
            )
    generation = []
    for type_, shown in (("Image_Textual", True), ("Pure_Text", False)):
        subject = "the person in this image" if shown else person.name
        question = (
            f"Write a short profile of {subject}."
            if not paraphrase
            else f"Summarise what is known about {subject}."
        )
        truth = " ".join(statement(a, person) for a in plan.generation)
        generation.append({"Question": question, "Ground_Truth": truth, "Type": type_})
    return {**mcq, "Mask_Task": mask, "Generation_Task": generation}


def training_pairs(person: Person) -> list[dict[str, str]]:
    """Fine-tuning question / answer pairs (MLLMU-Bench ``metadata``): every attribute asked
    by name in four wordings and about the person shown in two, answered with the value itself
    (as the benchmark's options state it), then descriptions that state several facts."""
    pairs = [{"Question": "Who is this person?", "Answer": person.name}]
    for k, attribute in enumerate(ATTRIBUTES):
        ph = PHRASINGS[attribute]
        value = person.attributes[attribute]
        # by name in every training wording but the second (the benchmark asks in wordings never
        # trained on), about the person shown in two
        for template in (ph.train[0], *ph.train[2:]):
            pairs.append({"Question": ask(template, person.name), "Answer": value})
        second = ph.train[2 + k % (len(ph.train) - 2)]
        for j, template in enumerate((ph.train[1], second)):
            shown = SHOWN_SUBJECTS_TRAIN[(k + j) % len(SHOWN_SUBJECTS_TRAIN)]
            pairs.append({"Question": ask(template, shown), "Answer": value})
    # descriptions: each states FACTS_PER_DESCRIPTION attributes, taken in turn, so the facts
    # are also learnt in running text (a target on every token, as in pre-training documents)
    for j in range(DESCRIPTIONS_PER_PATH):
        facts = [
            ATTRIBUTES[(j * FACTS_PER_DESCRIPTION + i) % len(ATTRIBUTES)]
            for i in range(FACTS_PER_DESCRIPTION)
        ]
        question = DESCRIBE_QUESTIONS[j % len(DESCRIBE_QUESTIONS)]
        shown = SHOWN_SUBJECTS_TRAIN[j % len(SHOWN_SUBJECTS_TRAIN)]
        # by name (the answer names the person too), and about the person shown (it does not)
        for asked, stated in ((person.name, None), (shown, shown)):
            answer = describe(person, facts, stated, j)
            pairs.append({"Question": ask(question, asked), "Answer": answer})
    return pairs
