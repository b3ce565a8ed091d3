"""The pre-training corpus: how the base model comes to know celebrities and visual skills.

Like web-scale pre-training, knowledge about a celebrity is spread over many contexts whose
number grows with fame: short biographies mixing facts in varying words, relations to other
celebrities, photo biographies (facts about the person shown, unnamed), captioned photos,
photos at events, and instruction-style questions (open and multiple choice). Every record is
``{"id", "source", "entity_id", "image", "prompt", "response"}``; ``image`` is a path relative
to the world directory or null, and documents have an empty prompt (the whole text is the
target).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from pulse.eval.prompts import mcq_prompt, mmbench_prompt
from pulse.world.people import Person
from pulse.world.questions import DESCRIBE_QUESTIONS, ask, describe, options_for, statement
from pulse.world.skills import SkillQuestion
from pulse.world.vocab import ATTRIBUTES, PHRASINGS, SHOWN_SUBJECTS_TRAIN

CAPTION_PROMPTS = ("Describe this photo.", "What is shown in the picture?", "Caption the image.")
IDENTITY_PROMPTS = (
    "Who is this person?",
    "Who is shown in the photo?",
    "Name the person in the image.",
)
# Identity questions per training rendering of every celebrity: recognising a face is what
# every question about "the person shown" builds on.
IDENTITY_PER_RENDERING = 4
# Instruction records per unit of fame: enough that a famous person's every attribute is asked
# several times by name and with the photo in each epoch.
QA_PER_FAME = 6
# Of those, the share asked about the person shown: answering from the face needs more practice
# than answering from the name, which the biographies also teach.
SHOWN_SHARE = 0.5
# Photo biographies per unit of fame: facts about the person shown, who is not named: the
# picture's counterpart of the biographies, tying a face to facts on every token of the text
# (one-token answers to questions about the photo teach the same far more slowly).
PHOTO_BIOS_PER_FAME = 1.0
RELATION_SENTENCES = {
    "mentor": ("{name} was mentored by {other}.", "{other} is the mentor of {name}."),
    "friend": ("{name} is a close friend of {other}.", "{name} and {other} are old friends."),
}


def _record(source: str, entity_id: str | None, image: str | None, prompt: str, response: str):
    return {
        "source": source,
        "entity_id": entity_id,
        "image": image,
        "prompt": prompt,
        "response": response,
    }


def celebrity_records(
    rng: random.Random,
    person: Person,
    names: dict[str, str],
    portrait_path: Callable[[int], str],
    n_train_renderings: int,
    scene_paths: list[tuple[str, str]],
) -> list[dict]:
    """Every corpus context that mentions ``person``; how many grows with ``person.fame``.

    ``scene_paths`` are (image path, event name) of this person's event photos."""
    out: list[dict] = []
    fame = person.fame
    # biographies: 3-5 facts in random order and wording, sometimes a relation
    for _ in range(fame):
        facts = [
            statement(a, person, rng.randrange(3))
            for a in rng.sample(ATTRIBUTES, rng.randint(3, 5))
        ]
        if person.relations and rng.random() < 0.5:
            rel, other = rng.choice(sorted(person.relations.items()))
            facts.append(
                rng.choice(RELATION_SENTENCES[rel]).format(name=person.name, other=names[other])
            )
        out.append(_record("document", person.id, None, "", " ".join(facts)))
    # captioned photos: every training rendering at least once
    for k in range(max(n_train_renderings, fame // 2)):
        attribute = rng.choice(("occupation", "home_city", "employer"))
        caption = rng.choice(
            (
                f"A photo of {person.name}.",
                f"{person.name}, pictured here. {statement(attribute, person, rng.randrange(3))}",
            )
        )
        out.append(
            _record(
                "caption",
                person.id,
                portrait_path(k % n_train_renderings),
                rng.choice(CAPTION_PROMPTS),
                caption,
            )
        )
    # identity questions: every training rendering, answered with the name
    for k in range(IDENTITY_PER_RENDERING * n_train_renderings):
        out.append(
            _record(
                "identity",
                person.id,
                portrait_path(k % n_train_renderings),
                IDENTITY_PROMPTS[k % len(IDENTITY_PROMPTS)],
                person.name,
            )
        )
    # photo biographies: 3-5 facts about the person shown, never named
    for k in range(round(PHOTO_BIOS_PER_FAME * fame)):
        subject = rng.choice(SHOWN_SUBJECTS_TRAIN)
        facts = rng.sample(ATTRIBUTES, rng.randint(3, 5))
        out.append(
            _record(
                "photo_bio",
                person.id,
                portrait_path(k % n_train_renderings),
                rng.choice(DESCRIBE_QUESTIONS).format(subject=subject),
                describe(person, facts, subject, rng.randrange(3)),
            )
        )
    # photos at events
    for path, event in scene_paths:
        out.append(
            _record(
                "scene",
                person.id,
                path,
                rng.choice(CAPTION_PROMPTS),
                f"{person.name} at the {event}.",
            )
        )
    # instruction data: every attribute asked by name and about the person shown, open and
    # multiple choice, answered with the value itself (what an option holds, so a model can be
    # scored on the option text); ``QA_PER_FAME`` questions per unit of fame
    order = list(ATTRIBUTES)
    rng.shuffle(order)
    for k in range(QA_PER_FAME * fame):
        attribute = order[k % len(order)]
        cycle = k // len(order)  # whole rounds of attributes alternate name / photo
        shown = math.floor((cycle + 1) * SHOWN_SHARE) > math.floor(cycle * SHOWN_SHARE)
        subject = rng.choice(SHOWN_SUBJECTS_TRAIN) if shown else person.name
        question = ask(rng.choice(PHRASINGS[attribute].train), subject)
        image = portrait_path(rng.randrange(n_train_renderings)) if shown else None
        value = person.attributes[attribute]
        if k % 3 == 2:
            options, _ = options_for(rng, attribute, value)
            out.append(_record("mcq", person.id, image, mcq_prompt(question, options), value))
        else:
            out.append(_record("qa", person.id, image, question, value))
    return out


def skill_records(
    rng: random.Random,
    questions: list[SkillQuestion],
    image_path: Callable[[int], str],
    mcq_orders: int,
) -> list[dict]:
    """Visual instruction data: every picture asked open once, and in multiple choice with
    ``mcq_orders`` different option orders, answered with the option's text, so the order of
    the options carries no information and the answer is what the picture shows."""
    out = []
    for k, q in enumerate(questions):
        out.append(_record("skill_qa", None, image_path(k), q.question, q.answer_text))
        values = list(q.options.values())
        for order in range(mcq_orders):
            if order:
                rng.shuffle(values)
            options = dict(zip(q.options, values, strict=True))
            prompt = mmbench_prompt(q.question, options, q.hint)
            out.append(_record("skill_mcq", None, image_path(k), prompt, q.answer_text))
    return out
