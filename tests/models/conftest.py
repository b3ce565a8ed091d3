"""Session fixtures: one tiny LLaVA (trained tokenizer + processor + random weights) built once.

Tests that wrap a model in an adapter (PEFT edits modules in place) take a deep copy.
"""

from __future__ import annotations

import copy

import pytest
from PIL import Image

from pulse.models.chat import ChatExample
from pulse.models.tiny import TinyModelConfig, build_tiny_lmm

CORPUS = [
    "Alice Moreau was born in Lyon in 1961. She works as a marine biologist.",
    "Bruno Keller lives in Basel and collects old maps. His sister is Clara Keller.",
    "Clara Keller is a violinist. She studied in Vienna and plays in a quartet.",
    "Dmitri Vasko founded a bakery in Tallinn. He likes chess and long walks.",
    "USER: Who is this person? ASSISTANT: Alice Moreau",
    "USER: Where does Bruno Keller live? ASSISTANT: Basel",
    "What is the job of the person in the image? A marine biologist.",
]


def _shaded(shade: int) -> Image.Image:
    img = Image.new("RGB", (32, 32), (shade, 255 - shade, 90))
    img.putpixel((3, 5), (0, 0, 0))
    return img


# Distinct pictures, so a batch that fed an image to the wrong example would show (in a loss,
# in pixel values); text rows of different lengths between them, and a document (no question).
MIXED_EXAMPLES = [
    ChatExample("Who is this person?", "Alice Moreau", _shaded(10)),
    ChatExample("Where does Bruno Keller live?", "Basel, a city on the Rhine"),
    ChatExample("What does this person do?", "marine biologist", _shaded(120)),
    ChatExample("Where was Alice Moreau born?", "Lyon"),
    ChatExample("Describe the picture.", "a green square", _shaded(240)),
    ChatExample("", "Clara Keller is a violinist. She studied in Vienna."),
]

# A small config: the defaults' shape, smaller vocabulary so the tests stay fast.
TINY = TinyModelConfig(vocab_size=512)


def _image(color: tuple[int, int, int], size: tuple[int, int]) -> Image.Image:
    img = Image.new("RGB", size, color)
    for x in range(0, size[0], 4):  # a stripe so images differ beyond their mean
        img.putpixel((x, x % size[1]), (255 - color[0], 255 - color[1], 255 - color[2]))
    return img


@pytest.fixture(scope="session")
def tiny_config() -> TinyModelConfig:
    return TINY


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return CORPUS * 20


@pytest.fixture(scope="session")
def tiny(corpus):
    """(model, processor) of the tiny LLaVA; do not wrap it, take ``fresh_model`` for that."""
    return build_tiny_lmm(corpus, TINY, seed=0)


@pytest.fixture(scope="session")
def tiny_model(tiny):
    return tiny[0]


@pytest.fixture(scope="session")
def processor(tiny):
    return tiny[1]


@pytest.fixture
def fresh_model(tiny_model):
    return copy.deepcopy(tiny_model)


@pytest.fixture(scope="session")
def tiny_dir(tiny, tmp_path_factory):
    model, processor = tiny
    out = tmp_path_factory.mktemp("tiny_llava")
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def examples() -> list[ChatExample]:
    """Mixed image / text-only examples with images of different sizes."""
    return [
        ChatExample("Who is this person?", "Alice Moreau", _image((200, 40, 40), (40, 30))),
        ChatExample("Where does Bruno Keller live?", "Basel"),
        ChatExample("What does this person play?", "the violin", _image((20, 90, 200), (32, 48))),
        ChatExample("Which city did Dmitri Vasko found a bakery in?", "Tallinn"),
    ]
