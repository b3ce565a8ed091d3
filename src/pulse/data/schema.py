"""What the toolkit reasons about: entities, question items and splits.

Every reader turns its format into these records and every writer takes them back, so the
evaluator and the unlearning loop never see a file format.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from enum import StrEnum

from PIL import Image


class EntityKind(StrEnum):
    PERSON = "person"
    EVENT = "event"


class Modality(StrEnum):
    MULTIMODAL = "multimodal"  # image + question; the entity is only shown, not named
    TEXT = "text"  # the entity is named in the question, no image


class ItemKind(StrEnum):
    MCQ = "mcq"
    CLOZE = "cloze"
    GENERATION = "generation"


OPTION_LETTERS = ("A", "B", "C", "D", "E", "F", "G", "H")


@dataclass(frozen=True)
class Entity:
    """A person or an event the model may know.

    ``images`` are encoded image files (PNG / JPEG bytes): the first is the canonical one, the
    rest are alternative renderings (other poses, scenes) used to test recognition on unseen
    images.
    """

    id: str
    kind: EntityKind
    name: str
    attributes: dict[str, str] = field(default_factory=dict)
    images: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class QAItem:
    """One question about one entity.

    ``answer`` is the gold option letter for multiple choice and the gold text otherwise.
    ``image`` is set for multimodal items. ``meta`` carries format-specific fields that the
    metrics may group by (e.g. an attribute name, an MMBench category).
    """

    id: str
    entity_id: str
    kind: ItemKind
    modality: Modality
    question: str
    answer: str
    options: dict[str, str] = field(default_factory=dict)
    image: bytes | None = None
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind is ItemKind.MCQ and self.answer not in self.options:
            raise ValueError(f"item {self.id}: answer {self.answer!r} is not one of the options")
        if self.modality is Modality.MULTIMODAL and self.image is None:
            raise ValueError(f"item {self.id}: a multimodal item needs an image")

    @property
    def answer_text(self) -> str:
        """The gold answer as text (the option's text for multiple choice)."""
        return self.options[self.answer] if self.kind is ItemKind.MCQ else self.answer


@dataclass(frozen=True)
class TrainPair:
    """A question / answer pair used to fine-tune or unlearn (MLLMU-Bench ``metadata``)."""

    entity_id: str
    question: str
    answer: str
    image: bytes | None = None


def decode_image(data: bytes) -> Image.Image:
    """Open encoded image bytes as an RGB PIL image."""
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


def encode_png(img: Image.Image) -> bytes:
    """Encode a PIL image as PNG bytes, deterministically (no timestamps, fixed compression)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()
