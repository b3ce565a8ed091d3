"""Who lives in the world: invented names, attributes, relations, fame and faces."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from pulse.world.vocab import (
    ATTRIBUTE_VALUES,
    NAME_CODAS,
    NAME_ONSETS,
    NAME_VOWELS,
)

# Face features: each person gets one value per feature. Identity lives in the pixels as a
# combination of these, so recognising a face means recognising the combination.
FACE_FEATURES: dict[str, tuple[str, ...]] = {
    "background": ("sky", "mint", "sand", "rose", "lilac", "slate", "peach", "olive"),
    "face_shape": ("round", "oval", "square"),
    "skin": ("porcelain", "beige", "tan", "brown", "umber"),
    "hair_colour": ("black", "chestnut", "blond", "auburn", "grey", "white", "teal"),
    "hair_style": ("short", "long", "bald", "spiky", "bun"),
    "eyes": ("dark", "blue", "green", "amber"),
    "accessory": ("none", "glasses", "hat", "earrings", "headband", "eyepatch"),
    "shirt": ("red", "navy", "green", "yellow", "white", "black", "orange", "violet"),
    "mouth": ("smile", "flat", "open"),
}
# Two faces must differ in at least this many features, so identities are not near-twins.
MIN_FACE_DISTANCE = 4


@dataclass
class Person:
    id: str
    name: str
    # "celebrity" (pre-training), "fictitious" (fine-tuning), "pebench"; "holdout_celebrity" and
    # "holdout_fictitious": made like those two and never trained on (membership inference)
    group: str
    attributes: dict[str, str]
    face: dict[str, str]
    fame: int = 0  # how many corpus contexts mention a celebrity (0 for others)
    relations: dict[str, str] = field(default_factory=dict)  # relation -> person id

    def to_json(self) -> dict:
        return asdict(self)


def invent_names(rng: random.Random, count: int, taken: Sequence[str] = ()) -> list[str]:
    """Distinct two-part names from syllables (first: 2 syllables, last: 2 or 3), sharing no
    part with each other or with the ``taken`` names."""

    def word(syllables: int) -> str:
        parts = [rng.choice(NAME_ONSETS) + rng.choice(NAME_VOWELS) for _ in range(syllables)]
        return ("".join(parts) + rng.choice(NAME_CODAS)).capitalize()

    names: list[str] = []
    firsts: set[str] = {name.split(" ", 1)[0] for name in taken}
    lasts: set[str] = {name.split(" ", 1)[1] for name in taken}
    while len(names) < count:
        first, last = word(2), word(rng.choice((2, 3)))
        # Unique first and last names: a name part then identifies a single person.
        if first in firsts or last in lasts or first in lasts or last in firsts:
            continue
        firsts.add(first)
        lasts.add(last)
        names.append(f"{first} {last}")
    return names


def invent_faces(
    rng: random.Random, count: int, taken: Sequence[dict[str, str]] = ()
) -> list[dict[str, str]]:
    """Faces at least MIN_FACE_DISTANCE features apart from each other and the ``taken``."""
    faces: list[dict[str, str]] = []
    while len(faces) < count:
        face = {k: rng.choice(v) for k, v in FACE_FEATURES.items()}
        if all(sum(face[k] != f[k] for k in face) >= MIN_FACE_DISTANCE for f in (*taken, *faces)):
            faces.append(face)
    return faces


def invent_attributes(rng: random.Random) -> dict[str, str]:
    attrs = {k: rng.choice(v) for k, v in ATTRIBUTE_VALUES.items()}
    # Keep birth and home city apart so the two questions have different answers.
    while attrs["home_city"] == attrs["birth_city"]:
        attrs["home_city"] = rng.choice(ATTRIBUTE_VALUES["home_city"])
    return attrs


def fame_curve(rng: random.Random, count: int, most: int, least: int) -> list[int]:
    """Corpus mentions per celebrity, falling with the log of the fame rank as in the real
    world: a few are everywhere, most are mentioned a handful of times. Shuffled so fame does
    not follow the ID order."""
    span = math.log(count) if count > 1 else 1.0
    fame = [
        round(least + (most - least) * (1 - math.log(rank) / span)) for rank in range(1, count + 1)
    ]
    rng.shuffle(fame)
    return fame


def invent_people(
    rng: random.Random,
    counts: dict[str, int],
    fame_range: tuple[int, int],
) -> list[Person]:
    """People of every group, with globally unique names and faces."""
    total = sum(counts.values())
    names = invent_names(rng, total)
    faces = invent_faces(rng, total)
    people: list[Person] = []
    prefix = {"celebrity": "c", "fictitious": "f", "pebench": "p"}
    for group, n in counts.items():
        fame = fame_curve(rng, n, *fame_range) if group == "celebrity" else [0] * n
        for k in range(n):
            i = len(people)
            people.append(
                Person(
                    id=f"{prefix[group]}{k + 1:03d}",
                    name=names[i],
                    group=group,
                    attributes=invent_attributes(rng),
                    face=faces[i],
                    fame=fame[k],
                )
            )
    _relate_celebrities(rng, [p for p in people if p.group == "celebrity"])
    return people


HOLDOUT_GROUPS = {"celebrity": "holdout_celebrity", "fictitious": "holdout_fictitious"}
HOLDOUT_PREFIX = {"holdout_celebrity": "hc", "holdout_fictitious": "hf"}


def invent_holdout(
    rng: random.Random,
    counts: dict[str, int],
    others: Sequence[Person],
    fame_range: tuple[int, int],
) -> list[Person]:
    """Holdout people: celebrities and fictitious people made exactly like those of
    :func:`invent_people` (attributes, faces, a celebrity's fame and relations) but in groups of
    their own, which no training data mentions: the non-members of membership inference.
    Names and faces are unique across ``others`` too; ``rng`` is a stream of its own, so the
    other people stay as they are."""
    total = sum(counts.values())
    names = invent_names(rng, total, [p.name for p in others])
    faces = invent_faces(rng, total, [p.face for p in others])
    people: list[Person] = []
    for kind, n in counts.items():
        group = HOLDOUT_GROUPS[kind]
        fame = fame_curve(rng, n, *fame_range) if kind == "celebrity" else [0] * n
        for k in range(n):
            i = len(people)
            people.append(
                Person(
                    id=f"{HOLDOUT_PREFIX[group]}{k + 1:03d}",
                    name=names[i],
                    group=group,
                    attributes=invent_attributes(rng),
                    face=faces[i],
                    fame=fame[k],
                )
            )
    # Relations among themselves: no record of a trained person names a holdout person.
    _relate_celebrities(rng, [p for p in people if p.group == HOLDOUT_GROUPS["celebrity"]])
    return people


def _relate_celebrities(rng: random.Random, celebs: list[Person]) -> None:
    """Each celebrity gets a mentor and a friend among the other celebrities."""
    if len(celebs) < 3:
        return
    for person in celebs:
        others = [c for c in celebs if c.id != person.id]
        mentor, friend = rng.sample(others, 2)
        person.relations = {"mentor": mentor.id, "friend": friend.id}
