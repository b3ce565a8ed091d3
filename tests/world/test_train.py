"""`pulse world train` on a small world with a very small model: stages, reuse, reload."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
from transformers import AutoModelForImageTextToText, AutoProcessor

from pulse.data.mllmu import read_mllmu
from pulse.errors import DataError
from pulse.world.train import (
    WorldTrainConfig,
    corpus_examples,
    finetune_examples,
    tokenizer_examples,
    train_world_models,
)
from tests.fixtures.tiny import FAST_WORLD


@pytest.fixture(scope="module")
def world(small_world):
    return small_world


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    return out, train_world_models(world, out, FAST_WORLD, progress=False)


def test_corpus_and_finetune_examples(world):
    corpus = corpus_examples(world)
    assert any(e.image is not None for e in corpus) and any(e.image is None for e in corpus)
    from pulse.world.train import _ft_pairs

    pairs = _ft_pairs(world)
    examples = finetune_examples(pairs)
    # questions that name the person are also trained without the portrait
    named = [p for p in pairs if not any(m in p.question.lower() for m in ("this person", "photo"))]
    assert len(examples) == len(pairs) + len(named)
    # a question about the person shown is never asked without the picture
    shown = [e for e in examples if any(m in e.question.lower() for m in ("this person", "photo"))]
    assert shown and all(e.image is not None for e in shown)


def test_replay_sample_is_a_seeded_share_of_the_corpus(world):
    from pulse.world.train import replay_sample

    corpus = corpus_examples(world)
    assert replay_sample(corpus, 0.0, 100, seed=0) == []
    sample = replay_sample(corpus, 0.25, 100, seed=0)
    assert len(sample) == 25 and all(e in corpus for e in sample)
    assert replay_sample(corpus, 0.25, 100, seed=0) == sample
    assert replay_sample(corpus, 0.25, 100, seed=1) != sample
    assert len(replay_sample(corpus, 1e6, 100, seed=0)) == len(corpus)  # at most the corpus


def test_stages_train_save_and_reload(trained):
    out, results = trained
    assert [r.name for r in results] == ["base", "finetuned"]
    assert not any(r.reused for r in results)
    for r in results:
        assert r.steps > 0 and r.check["entities"] > 0
        # both scorers' accuracies, each a fraction per modality
        for key in ("mcq_by_modality", "mcq_letter_by_modality"):
            assert set(r.check[key]) == {"multimodal", "text"}
            assert all(0 <= v <= 1 for v in r.check[key].values())
        assert 0 <= r.check["general_letter_vanilla"] <= 1
        model = AutoModelForImageTextToText.from_pretrained(r.path)
        processor = AutoProcessor.from_pretrained(r.path)
        assert model.config.text_config.vocab_size == len(processor.tokenizer)
        assert any(r.path.glob("*.safetensors"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["base"]["status"] == "done"


def test_unchanged_world_and_config_reuse_every_stage(world, trained):
    out, _ = trained
    again = train_world_models(world, out, FAST_WORLD, progress=False)
    assert all(r.reused for r in again)


def test_a_changed_stage_retrains_with_the_stages_after_it(world, tmp_path, trained):
    out, _ = trained
    copy = tmp_path / "models"
    shutil.copytree(out, copy)
    # A fine-tuning change keeps the base model.
    changed = replace(FAST_WORLD, finetune=replace(FAST_WORLD.finetune, max_steps=3))
    results = train_world_models(world, copy, changed, progress=False, check=False)
    assert [r.reused for r in results] == [True, False]
    stages = json.loads((copy / "manifest.json").read_text())["stages"]
    assert {name: s["key"] for name, s in stages.items()} == changed.stage_keys(world)
    # A pre-training change retrains both; so does a base model that went missing.
    changed = replace(changed, pretrain=replace(FAST_WORLD.pretrain, max_steps=3))
    results = train_world_models(world, copy, changed, progress=False, check=False)
    assert [r.reused for r in results] == [False, False]
    shutil.rmtree(copy / "base")
    results = train_world_models(world, copy, changed, progress=False, check=False)
    assert [r.reused for r in results] == [False, False]


def test_not_a_world(tmp_path):
    with pytest.raises(DataError, match=r"world\.json"):
        train_world_models(tmp_path, tmp_path / "m", FAST_WORLD, progress=False)


def test_bad_corpus_record_names_the_row(world, tmp_path):
    copy = tmp_path / "w"
    shutil.copytree(world, copy)
    corpus = copy / "corpus" / "pretrain.jsonl"
    lines = corpus.read_text().splitlines()
    lines[2] = '{"prompt": "x"}'
    corpus.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="row 3"):
        corpus_examples(copy)


def test_known_in_both_modalities_counts_four_of_five_as_eighty_percent():
    from pulse.data.schema import ItemKind, Modality
    from pulse.eval.records import ItemRecord
    from pulse.world.train import known_in_both_modalities

    def records(entity, text_right, image_right):
        out = []
        for modality, right in ((Modality.TEXT, text_right), (Modality.MULTIMODAL, image_right)):
            for k in range(5):
                out.append(
                    ItemRecord(
                        f"{entity}/{modality.value}/{k}",
                        entity,
                        ItemKind.MCQ,
                        modality,
                        "A",
                        "A",
                        correct=k < right,
                    )
                )
        return out

    recs = records("p1", 4, 4) + records("p2", 5, 3) + records("p3", 5, 5)
    assert known_in_both_modalities(recs, 0.8) == 2  # p1 (4/5 is exactly 80 %) and p3


def test_finetuning_moves_only_the_embeddings_of_tokens_pretraining_never_saw(world, trained):
    # the fictitious names' own tokens are untouched by pre-training; fine-tuning trains them,
    # and leaves every token the corpus uses as the base model has it
    from pulse.models.loading import load_processor
    from pulse.world.train import _ft_pairs, corpus_examples, finetune_examples, unseen_tokens

    out, _ = trained
    base, tuned = (
        AutoModelForImageTextToText.from_pretrained(out / name).get_input_embeddings().weight
        for name in ("base", "finetuned")
    )
    new = unseen_tokens(
        load_processor(out / "base"), corpus_examples(world), finetune_examples(_ft_pairs(world))
    )
    assert FAST_WORLD.finetune_embeddings and new
    moved = set((base - tuned).abs().sum(1).nonzero().flatten().tolist())
    assert moved and moved <= set(new)


def test_the_tokenizer_reads_members_and_the_fictitious_holdout_alike(world):
    """Members' and holdout people's names are learnt by the tokenizer alike, so a membership
    attack cannot tell them apart by how their names are split; the choice is in the stage key."""
    people = json.loads((world / "world.json").read_text())["people"]
    holdout = [p["name"] for p in people if p["group"] == "holdout_fictitious"]
    assert holdout and read_mllmu(world / "mllmu", "Holdout_Set")

    def named(cfg: WorldTrainConfig) -> str:
        return " ".join(e.question + " " + e.answer for e in tokenizer_examples(world, cfg))

    seen, unseen = named(WorldTrainConfig()), named(WorldTrainConfig(tokenizer_sees_holdout=False))
    assert all(name in seen for name in holdout)
    assert not any(name in unseen for name in holdout)
    keys = WorldTrainConfig().stage_keys(world)
    without = WorldTrainConfig(tokenizer_sees_holdout=False).stage_keys(world)
    assert keys["base"] != without["base"] and keys["finetuned"] != without["finetuned"]
