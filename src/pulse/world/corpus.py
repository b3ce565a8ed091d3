"""The pre-training corpus: how the base model comes to know celebrities and visual skills.

Like web-scale pre-training, knowledge about a celebrity is spread over many contexts whose
number grows with fame: short biographies mixing facts in varying words, relations to other
celebrities, captioned photos, photos at events, and instruction-style questions (open and
multiple choice). Every record is ``{"id", "source", "entity_id", "image", "prompt",
"response"}``; ``image`` is a path relative to the world directory or null, and documents have an
empty prompt (the whole text is the target).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from pulse.eval.prompts import mcq_prompt, mmbench_prompt
from pulse.world.people import Person
from pulse.world.questions import options_for, statement
from pulse.world.skills import SkillQuestion
from pulse.world.vocab import ATTRIBUTES, PHRASINGS, SHOWN_SUBJECTS_TRAIN

CAPTION_PROMPTS = ("Describe this photo.", "What is shown in the picture?", "Caption the image.")
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
    # instruction data: questions by name and about the person shown, open and multiple choice
    order = list(ATTRIBUTES)
    rng.shuffle(order)
    for k in range(2 * fame):
        attribute = order[k % len(order)]
        shown = k % 2 == 1
        subject = rng.choice(SHOWN_SUBJECTS_TRAIN) if shown else person.name
        question = rng.choice(PHRASINGS[attribute].train).format(subject=subject)
        question = question[0].upper() + question[1:]
        image = portrait_path(rng.randrange(n_train_renderings)) if shown else None
        if (k // 2) % 2 == 0:
            out.append(
                _record(
                    "qa", person.id, image, question, statement(attribute, person, rng.randrange(3))
                )
            )
        else:
            options, gold = options_for(rng, attribute, person.attributes[attribute])
            out.append(_record("mcq", person.id, image, mcq_prompt(question, options), gold))
    return out


def skill_records(
    rng: random.Random,
    questions: list[SkillQuestion],
    image_path: Callable[[int], str],
    mcq_orders: int,
) -> list[dict]:
    """Visual instruction data: every picture asked open once, and in multiple choice with
    ``mcq_orders`` different option orders, so the letter itself carries no information and
    the only way to answer is to find the option that matches the picture."""
    out = []
    for k, q in enumerate(questions):
        out.append(_record("skill_qa", None, image_path(k), q.question, q.answer_text))
        values = list(q.options.values())
        for order in range(mcq_orders):
            if order:
                rng.shuffle(values)
            options = dict(zip(q.options, values, strict=True))
            gold = next(k for k, v in options.items() if v == q.answer_text)
            prompt = mmbench_prompt(q.question, options, q.hint)
            out.append(_record("skill_mcq", None, image_path(k), prompt, gold))
    return out
