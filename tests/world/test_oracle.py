"""The world's oracles: the original recipe without the forget set, keyed and reused."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from pulse.data.mllmu import read_mllmu
from pulse.errors import DataError
from pulse.world.oracle import ORACLES, oracle_finetune_pairs, train_finetuned_oracle
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
