"""General visual skills: shapes, colours, counts, positions and sizes.

The same generator makes the instruction data of pre-training (``train`` phrasings) and the
held-out general-capability benchmark (``eval`` phrasings, new pictures), so the benchmark
measures a skill, not a memorised question.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image

from pulse.data.schema import OPTION_LETTERS
from pulse.world.images import draw_shapes
from pulse.world.vocab import COLOURS, COUNT_WORDS, POSITIONS, SHAPES, SIZES

# skill -> (category, l2-category), in MMBench's naming style
CATEGORIES: dict[str, tuple[str, str]] = {
    "shape": ("object_recognition", "coarse_perception"),
    "colour": ("attribute_recognition", "finegrained_perception (instance-level)"),
    "count": ("object_counting", "finegrained_perception (cross-instance)"),
    "position": ("object_localization", "finegrained_perception (instance-level)"),
    "size": ("attribute_comparison", "attribute_reasoning"),
}

PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "shape": {
        "train": ("Which shape appears in the picture?", "What shape is drawn here?"),
        "eval": ("The image contains what kind of shape?",),
    },
    "colour": {
        "train": ("What colour is the shape in the picture?", "Which colour is the shape?"),
        "eval": ("The shape shown is painted in which colour?",),
    },
    "count": {
        "train": ("How many shapes are in the picture?", "Count the shapes in the picture."),
        "eval": ("What is the number of shapes in this image?",),
    },
    "position": {
        "train": (
            "Where is the shape in the picture?",
            "In which part of the picture is the shape?",
        ),
        "eval": ("The shape is located on which side of the image?",),
    },
    "size": {
        "train": ("Is the shape big or small?", "How large is the shape in the picture?"),
        "eval": ("Judging by the image, the shape is of what size?",),
    },
}
HINT = "The picture shows simple shapes on a plain background."


@dataclass(frozen=True)
class SkillQuestion:
    skill: str
    image: Image.Image
    question: str
    options: dict[str, str]
    answer: str  # letter
    hint: str
    answer_text: str


def _place(rng: random.Random, region: str | None, r: float) -> tuple[float, float]:
    lo, hi = 0.12 + r, 0.88 - r
    if region == "left":
        return rng.uniform(lo, 0.3), rng.uniform(0.35, 0.65)
    if region == "right":
        return rng.uniform(0.7, hi), rng.uniform(0.35, 0.65)
    if region == "top":
        return rng.uniform(0.35, 0.65), rng.uniform(lo, 0.3)
    if region == "bottom":
        return rng.uniform(0.35, 0.65), rng.uniform(0.7, hi)
    return rng.uniform(lo, hi), rng.uniform(lo, hi)


def _background(rng: random.Random) -> tuple[int, int, int]:
    g = rng.randint(215, 250)
    return (g, g, rng.randint(215, 250))


def make_question(rng: random.Random, skill: str, phrasing: str) -> SkillQuestion:
    """One random picture and question of ``skill`` using ``phrasing`` ("train" / "eval")."""
    shape, colour = rng.choice(SHAPES), rng.choice(list(COLOURS))
    objects: list[tuple[str, str, float, float, float]] = []
    if skill == "count":
        n = rng.randint(1, 4)
        r = 0.09
        cells = rng.sample([(x, y) for x in (0.25, 0.5, 0.75) for y in (0.25, 0.5, 0.75)], n)
        for x, y in cells:
            jitter = (rng.uniform(-0.04, 0.04), rng.uniform(-0.04, 0.04))
            objects.append((shape, colour, x + jitter[0], y + jitter[1], r))
        answer, pool = COUNT_WORDS[n - 1], COUNT_WORDS
    elif skill == "position":
        where = rng.choice(POSITIONS)
        r = 0.1
        objects.append((shape, colour, *_place(rng, where, r), r))
        answer, pool = where, POSITIONS
    elif skill == "size":
        size = rng.choice(SIZES)
        r = rng.uniform(0.3, 0.38) if size == "big" else rng.uniform(0.08, 0.12)
        objects.append((shape, colour, 0.5, 0.5, r))
        answer, pool = size, SIZES
    else:
        r = rng.uniform(0.16, 0.26)
        objects.append((shape, colour, *_place(rng, None, r), r))
        answer, pool = (shape, SHAPES) if skill == "shape" else (colour, tuple(COLOURS))
    n_options = min(len(pool), rng.choice((3, 4, 4, 4)))  # some questions have no option D
    values = [answer, *rng.sample([v for v in pool if v != answer], n_options - 1)]
    rng.shuffle(values)
    letters = OPTION_LETTERS[:n_options]
    options = dict(zip(letters, values, strict=True))
    return SkillQuestion(
        skill=skill,
        image=draw_shapes(objects, _background(rng)),
        question=rng.choice(PHRASES[skill][phrasing]),
        options=options,
        answer=letters[values.index(answer)],
        hint=HINT if rng.random() < 0.3 else "",
        answer_text=answer,
    )


def make_questions(rng: random.Random, count: int, phrasing: str) -> list[SkillQuestion]:
    """``count`` questions cycling through the skills so every skill is equally present."""
    skills = list(CATEGORIES)
    return [make_question(rng, skills[k % len(skills)], phrasing) for k in range(count)]
