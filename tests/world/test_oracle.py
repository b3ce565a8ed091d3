"""The world's oracles: the original recipe without the forget set, keyed and reused."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace

import pytest

from pulse.data.mllmu import read_mllmu
from pulse.errors import DataError
from pulse.world.oracle import (
    ORACLES,
    CorpusFilter,
    forget_names,
    oracle_finetune_pairs,
    train_finetuned_oracle,
    train_pretrained_oracle,
)
from tests.fixtures.tiny import FAST_WORLD


@pytest.fixture(scope="module")
def people(small_world) -> list[str]:
    return sorted(p.id for p in read_mllmu(small_world / "mllmu", "ft_Data"))


@pytest.fixture
def models(tiny_models, tmp_path):
    """A copy of the session's tiny models: an oracle writes beside them."""
    copy = tmp_path / "models"
    shutil.copytree(tiny_models, copy)
    return copy


def test_oracle_data_hold_no_record_of_the_forget_people(small_world, people):
    forget = people[:5]
    pairs = oracle_finetune_pairs(small_world, forget)
    kept = {pair.entity_id for pair in pairs}
    assert kept == set(people) - set(forget)
    with pytest.raises(DataError, match="nobody"):
        oracle_finetune_pairs(small_world, ["nobody"])


def test_oracle_is_keyed_by_forget_set_and_recipe(small_world, models, people):
    forget = people[:4]
    first = train_finetuned_oracle(small_world, models, forget, FAST_WORLD, progress=False)
    assert not first.reused and first.steps > 0
    assert first.path.parent == models / ORACLES and any(first.path.glob("*.safetensors"))
    # The quick check scores the left-out people apart from the kept ones.
    assert set(first.check["forget_mcq_by_modality"]) == {"multimodal", "text"}
    entry = json.loads((models / "manifest.json").read_text())["stages"][
        f"{ORACLES}/{first.path.name}"
    ]
    assert entry["status"] == "done" and entry["forget"] == sorted(forget)
    # The same forget set (in any order) is reused; another one, or another recipe, is not.
    again = train_finetuned_oracle(
        small_world, models, list(reversed(forget)), FAST_WORLD, progress=False, check=False
    )
    assert again.reused and again.path == first.path
    other = train_finetuned_oracle(
        small_world, models, people[:3], FAST_WORLD, progress=False, check=False
    )
    assert not other.reused and other.path != first.path
    recipe = replace(FAST_WORLD, finetune=replace(FAST_WORLD.finetune, max_steps=3))
    # A changed recipe changes the base only when pre-training changes: here it does not.
    retrained = train_finetuned_oracle(
        small_world, models, forget, recipe, progress=False, check=False
    )
    assert not retrained.reused and retrained.path != first.path


def test_oracle_needs_the_recipes_base_model(small_world, models, people):
    recipe = replace(FAST_WORLD, pretrain=replace(FAST_WORLD.pretrain, max_steps=3))
    with pytest.raises(DataError, match="base model"):
        train_finetuned_oracle(small_world, models, people[:2], recipe, progress=False)


@pytest.fixture(scope="module")
def celebrities(small_world) -> list[str]:
    return sorted(p.id for p in read_mllmu(small_world / "mllmu", "Retain_Set"))


def _corpus(world):
    lines = (world / "corpus" / "pretrain.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_oracle_corpus_holds_no_record_of_the_forget_celebrities(small_world, celebrities):
    forget = celebrities[:3]
    names = list(forget_names(small_world, forget).values())
    keep = CorpusFilter(small_world, forget)
    corpus = _corpus(small_world)
    kept = [r for rec in corpus if (r := keep(rec)) is not None]
    assert 0 < len(kept) < len(corpus)
    for record in kept:
        assert record["entity_id"] not in forget
        assert not any(f"/{i}/" in (record["image"] or "") for i in forget)
        text = record["prompt"] + " " + record["response"]
        assert not any(name in text for name in names), record
    # Another celebrity's biography naming one of them keeps its other sentences.
    trimmed = [
        (rec, r)
        for rec in corpus
        if rec["source"] == "document" and (r := keep(rec)) is not None and r != rec
    ]
    assert trimmed
    for original, record in trimmed:
        kept_sentences = set(re.split(r"(?<=\.) ", record["response"]))
        assert kept_sentences < set(re.split(r"(?<=\.) ", original["response"]))
    # Records about no one (the visual skills) are untouched.
    assert all(keep(rec) == rec for rec in corpus if rec["entity_id"] is None)
    with pytest.raises(DataError, match="nobody"):
        CorpusFilter(small_world, ["nobody"])


def test_pretrained_oracle_is_trained_from_scratch_and_keyed(small_world, models, celebrities):
    forget = celebrities[:2]
    first = train_pretrained_oracle(small_world, models, forget, FAST_WORLD, progress=False)
    assert not first.reused and first.path.name.startswith("pretrained-")
    assert set(first.check["forget_mcq_by_modality"]) == {"multimodal", "text"}
    again = train_pretrained_oracle(
        small_world, models, forget, FAST_WORLD, progress=False, check=False
    )
    assert again.reused and again.path == first.path
