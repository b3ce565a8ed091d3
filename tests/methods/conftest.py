"""Fixtures: one tiny LLaVA fine-tuned (through the shared loop) on a few facts, and examples.

Methods are compared on a model that knows its forget set, so that unlearning has something
to remove (SimNPO's loss is ~0 on answers a model never learnt). Tests that wrap a model in an
adapter take a deep copy.
"""

from __future__ import annotations

import copy

import pytest
import torch
from PIL import Image

from pulse.methods.supervised import TrainConfig, train_supervised
from pulse.models.adapters import UpdateScope, apply_scope
from pulse.models.chat import ChatExample
from pulse.models.tiny import TinyModelConfig, build_tiny_lmm

CORPUS = [
    "Alice Moreau was born in Lyon in 1961. She works as a marine biologist.",
    "Bruno Keller lives in Basel and collects old maps. His sister is Clara Keller.",
    "Clara Keller is a violinist. She studied in Vienna and plays in a quartet.",
    "Dmitri Vasko founded a bakery in Tallinn. He likes chess and long walks.",
    "USER: Who is this person? ASSISTANT: Alice Moreau",
    "I don't know. I'm not able to answer that. I cannot answer that question.",
]

SMALL = TinyModelConfig(
    vocab_size=400,
    text_hidden=48,
    text_intermediate=96,
    text_layers=2,
    text_heads=2,
    vision_hidden=32,
    vision_intermediate=64,
    vision_layers=1,
)


def image(color: tuple[int, int, int]) -> Image.Image:
    img = Image.new("RGB", (32, 32), color)
    for x in range(0, 32, 4):
        img.putpixel((x, x), (255 - color[0], 255 - color[1], 255 - color[2]))
    return img


FORGET = [
    ChatExample("Who is this person?", "Alice Moreau", image((200, 40, 40))),
    ChatExample("Where was Alice Moreau born?", "Lyon"),
    ChatExample("What does this person do?", "marine biologist", image((200, 40, 40))),
    ChatExample("Where does Bruno Keller live?", "Basel"),
]
RETAIN = [
    ChatExample("What does Clara Keller play?", "the violin"),
    ChatExample("Who is this person?", "Dmitri Vasko", image((20, 90, 200))),
    ChatExample("Where is the bakery of Dmitri Vasko?", "Tallinn"),
    ChatExample("Where did Clara Keller study?", "Vienna"),
    ChatExample("What game does this person like?", "chess", image((20, 90, 200))),
]


@pytest.fixture(scope="session")
def tiny():
    """(model, processor): a tiny LLaVA fine-tuned on the forget and retain facts."""
    torch.set_num_threads(1)
    model, processor = build_tiny_lmm(CORPUS * 10, SMALL, seed=0)
    cfg = TrainConfig(max_steps=60, batch_size=9, learning_rate=1e-2, progress=False)
    stats = train_supervised(model, processor, FORGET + RETAIN, cfg)
    assert stats.last_loss < stats.first_loss / 4, stats.losses
    return model, processor


@pytest.fixture
def lora(tiny):
    """A fresh rank-4 LoRA on a copy of the tiny model's language model."""
    torch.manual_seed(0)
    return apply_scope(copy.deepcopy(tiny[0]), UpdateScope(rank=4, alpha=8))


@pytest.fixture(scope="session")
def processor(tiny):
    return tiny[1]


@pytest.fixture(scope="session")
def model_dir(tiny, tmp_path_factory):
    model, processor = tiny
    out = tmp_path_factory.mktemp("tiny_llava")
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
