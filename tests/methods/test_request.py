"""`run_unlearning`: one request end to end on a small synthetic world with the tiny model."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file

from pulse.data.mllmu import profile_train_pairs, read_mllmu
from pulse.data.schema import TrainPair
from pulse.data.splits import write_split
from pulse.errors import ConfigError, DataError
from pulse.methods.request import load_unlearned, resolve_ids, run_unlearning, sample_per_entity
from pulse.models.chat import ChatCollator, ChatExample
from pulse.models.loading import load_model
from pulse.models.settings import UNLEARN_DEFAULTS, TrainSettings


def fast(**changes) -> dict:
    """run_request's keywords for a two-step request (pulse unlearn's settings otherwise)."""
    settings = {"max_steps": 2, "batch_size": 2, "lr": 1e-2, **changes}
    train = UNLEARN_DEFAULTS.model_copy(update=settings)
    return {"train": train, "progress": False, "report_to": ()}


FAST = fast()


@pytest.fixture(scope="module")
def mllmu(small_world):
    return small_world / "mllmu"


def test_ids_from_a_list_a_split_file_or_a_config(mllmu, tmp_path):
    assert resolve_ids("f002, f007", mllmu) == (["f002", "f007"], None)
    split = write_split(tmp_path / "forget.txt", ["f002", "f009"])
    assert resolve_ids(str(split), mllmu) == (["f002", "f009"], None)
    ids, config = resolve_ids("forget_5", mllmu)
    assert config == "forget_5" and len(ids) == 1
    with pytest.raises(ConfigError, match="listed twice"):
        resolve_ids("f002,f002", mllmu)


def test_a_person_keeps_the_same_sample_of_pairs_in_every_request():
    pairs = [TrainPair(who, f"q{i}", f"a{i}") for i in range(6) for who in ("p1", "p2", "p3")]
    pairs += [TrainPair("p4", "only", "one")]
    kept = sample_per_entity(pairs, 2, seed=0)
    counts = {who: sum(p.entity_id == who for p in kept) for who in ("p1", "p2", "p3", "p4")}
    assert counts == {"p1": 2, "p2": 2, "p3": 2, "p4": 1}
    assert kept == [p for p in pairs if p in kept]  # the original order
    # p1 alone (a sequential subset) gets the pairs it got among everyone (the batch request).
    alone = sample_per_entity([p for p in pairs if p.entity_id == "p1"], 2, seed=0)
    assert alone == [p for p in kept if p.entity_id == "p1"]
    samples = {tuple(p.question for p in sample_per_entity(pairs, 2, seed=s)) for s in range(8)}
    assert len(samples) > 1  # the seed chooses
    assert sample_per_entity(pairs, 6, seed=0) == pairs


def test_a_request_writes_its_adapter_and_result(model_dir, mllmu, tmp_path):
    out = tmp_path / "req"
    result = run_unlearning(
        model_dir, mllmu, "f002,f007", "retain_50", "ga_kl", ["kl_weight=0.5"], out, **FAST
    )
    assert result.ok and result.steps == 2
    record = json.loads((out / "result.json").read_text())
    assert record["status"] == "ok" and record["diverged"] is None
    assert record["params"] == {"kl_weight": 0.5}
    assert record["forget_ids"] == ["f002", "f007"] and len(record["retain_ids"]) == 8
    profiles = read_mllmu(mllmu, "Full_Set")
    pairs = sum(len(profile_train_pairs(p)) for p in profiles if p.id in ("f002", "f007"))
    assert record["n_forget_examples"] == pairs > 0
    assert [e["step"] for e in record["history"]] == [1, 2]
    assert {"loss", "forget_nll", "retain_kl"} <= set(record["history"][0])
    assert record["trainable_params"]["llm"] > 0 and record["trainable_params"]["vision"] == 0
    assert (out / "adapter" / "adapter_config.json").is_file()

    model, _ = load_unlearned(out, dtype="float32")
    base = load_model(model_dir, dtype="float32")
    moved = [
        not torch.equal(p, base.get_parameter(n.replace("base_model.model.", "", 1)))
        for n, p in model.named_parameters()
        if "lora" not in n and "base_layer" not in n
    ]
    assert not any(moved)  # frozen weights untouched; the adapter carries the change
    assert sum(p.abs().sum() for n, p in model.named_parameters() if "lora_B" in n) > 0

    # Merged for evaluation: a plain model computing the same function.
    plain, processor = load_unlearned(out, dtype="float32", merged=True)
    assert not any("lora" in n for n, _ in plain.named_parameters())
    batch = ChatCollator(processor)([ChatExample("Where was Alice born?", "Lyon")])
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        expected, got = model(**inputs).logits, plain(**inputs).logits
    assert torch.allclose(expected, got, atol=1e-5)
    assert not torch.equal(got, base(**inputs).logits)  # the request's change is in it


def test_a_request_does_not_depend_on_what_ran_before_it(model_dir, mllmu, tmp_path):
    """The adapter's initialisation is seeded by the request: a resumed run, whose earlier
    stages did not run in this process, trains the same adapter."""
    adapters = []
    for k, noise in enumerate((1, 2)):
        torch.manual_seed(noise)
        torch.rand(noise)  # a different global generator state before each request
        out = tmp_path / f"req{k}"
        run_unlearning(model_dir, mllmu, "f002", None, "ga", None, out, **FAST)
        adapters.append(load_file(out / "adapter" / "adapter_model.safetensors"))
    assert adapters[0].keys() == adapters[1].keys()
    assert all(torch.equal(adapters[0][k], adapters[1][k]) for k in adapters[0])


def test_a_diverged_request_writes_no_adapter(model_dir, mllmu, tmp_path):
    out = tmp_path / "bad"
    (out / "adapter").mkdir(parents=True)  # a stale adapter from an earlier run
    bounded = fast(loss_bound=1e-3)
    result = run_unlearning(model_dir, mllmu, "f002", None, "ga", None, out, **bounded)
    assert result.status == "diverged" and result.adapter_dir is None
    record = json.loads((out / "result.json").read_text())
    assert record["diverged"]["step"] == 1 and record["diverged"]["reason"] == "|loss| > 0.001"
    assert record["adapter"] is None and not (out / "adapter").exists()


def test_sequential_requests_with_the_previous_model_as_reference(model_dir, mllmu, tmp_path):
    first = run_unlearning(model_dir, mllmu, "f002", "f007", "npo", [], tmp_path / "r1", **FAST)
    second = run_unlearning(
        model_dir,
        mllmu,
        "f009",
        "f007",
        "npo",
        ["retain=nll"],
        tmp_path / "r2",
        adapter=first.adapter_dir,
        reference="previous",
        **FAST,
    )
    assert second.ok
    merged = second.record["applies_on"]["merged"]
    assert merged == [str(first.adapter_dir.resolve())]
    model, _ = load_unlearned(tmp_path / "r2", dtype="float32")
    assert model is not None
    # "initial": the adapter is trained further (here with gradient checkpointing); its
    # reference stays the loaded model
    third = run_unlearning(
        model_dir,
        mllmu,
        "f010",
        "f007",
        "ga",
        [],
        tmp_path / "r3",
        adapter=first.adapter_dir,
        **fast(gradient_checkpointing=True),
    )
    assert third.ok and third.record["applies_on"]["merged"] == []
    before = load_file(first.adapter_dir / "adapter_model.safetensors")
    after = load_file(third.adapter_dir / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    assert all(not torch.equal(before[k], after[k]) for k in before if "lora_B" in k)


@pytest.mark.parametrize(
    ("forget", "retain", "method", "error", "message"),
    [
        ("f002", "f002,f007", "ga", ConfigError, "IDs both in --forget and --retain: f002"),
        ("f002", None, "gd", ConfigError, "method 'gd' needs retain data: give --retain"),
        ("f002", None, "mmunlearner", ConfigError, "needs retain data"),
        ("nobody", None, "ga", DataError, "ID 'nobody' is in none of the configs"),
        ("f002", None, "npo", ConfigError, "unknown parameter 'beat'"),
    ],
)
def test_bad_requests_fail_before_loading_the_model(
    mllmu, tmp_path, forget, retain, method, error, message
):
    overrides = ["beat=1"] if method == "npo" else None
    with pytest.raises(error, match=message):
        run_unlearning(
            tmp_path / "no-model", mllmu, forget, retain, method, overrides, tmp_path / "o"
        )


def test_training_settings_are_checked_where_they_are_made():
    with pytest.raises(ValidationError, match="pairs_per_id"):
        TrainSettings(pairs_per_id=0)
    assert UNLEARN_DEFAULTS.scope.rank == TrainSettings().scope.rank == 8  # one LoRA rank
