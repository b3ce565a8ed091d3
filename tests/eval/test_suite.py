"""`pulse eval`'s library function end to end on a small world with a tiny random model."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from rich.console import Console
from rich.table import Table

from pulse.data.mllmu import profile_items, read_mllmu
from pulse.errors import ConfigError, DataError
from pulse.eval.mcq import score_mcq
from pulse.eval.scorers import DEFAULT_SCORER
from pulse.eval.suite import default_fewshot_pool, evaluate, parse_tasks, render_table
from pulse.models.adapters import UpdateScope, apply_scope, save_adapter


@pytest.fixture(scope="module")
def result(tiny_dir, world, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval_out") / "result.json"
    value = evaluate(
        tiny_dir,
        world,
        "forget_10",
        "mcq,cloze,gen,mmbench",
        batch_size=16,
        max_new_tokens=4,
        out=out,
        progress=False,
    )
    return value, out


def as_json(result):
    """An evaluation result as the JSON ``--out`` writes."""
    return result.to_dict()


def test_result_is_json_and_written(result):
    typed, out = result
    value = as_json(typed)
    assert json.loads(out.read_text()) == json.loads(json.dumps(value))
    meta = value["meta"]
    assert meta["split"] == "forget_10" and meta["seed"] == 0
    assert meta["scorer"] == DEFAULT_SCORER == "option_text"  # pulse eval's default
    assert meta["tasks"] == ["mcq", "cloze", "gen", "mmbench"]
    assert {"torch", "transformers"} <= set(meta["versions"])


def test_mcq_records_per_item_and_modality_aggregates(result, world):
    value = as_json(result[0])
    profiles = read_mllmu(world / "mllmu", "forget_10")
    mcq = value["tasks"]["mcq"]
    n = sum(len(p.mcq_image) + len(p.mcq_text) for p in profiles)
    assert len(mcq["records"]) == n == mcq["summary"]["overall"]["n"]
    by = mcq["summary"]["by_modality"]
    assert by["multimodal"]["n"] + by["text"]["n"] == n
    assert set(mcq["summary"]["by_entity"]) == {p.id for p in profiles}
    correct = sum(r["correct"] for r in mcq["records"])
    assert mcq["summary"]["overall"]["total"] == correct
    assert all(set(r["extras"]["logprobs"]) == {"A", "B", "C", "D"} for r in mcq["records"])
    # 95 % intervals over the people, around each mean.
    for key, tally in (("overall", mcq["summary"]["overall"]), ("text", by["text"])):
        low, high = mcq["intervals"][key]
        assert low <= tally["mean"] <= high, key
    mm = value["tasks"]["mmbench"]
    low, high = mm["intervals"]["circular"]
    assert low <= mm["circular"]["mean"] <= high


def test_cloze_and_generation_tasks(result, world):
    value = as_json(result[0])
    profiles = read_mllmu(world / "mllmu", "forget_10")
    tasks = value["tasks"]
    assert len(tasks["cloze"]["records"]) == sum(len(p.mask) for p in profiles)
    assert len(tasks["gen"]["records"]) == sum(len(p.generation) for p in profiles)
    rouge = tasks["gen"]["rouge"]
    assert set(rouge["overall"]) == {"rouge1", "rouge2", "rougeL"}
    assert set(rouge["by_modality"]) == {"multimodal", "text"}
    assert tasks["gen"]["summary"]["overall"]["mean"] == pytest.approx(rouge["overall"]["rougeL"])


def test_mmbench_circular_metrics(result):
    value = as_json(result[0])
    mm = value["tasks"]["mmbench"]
    records = mm["records"]
    questions = {int(r["item_id"].split("/")[1]) % 1_000_000 for r in records}
    assert mm["circular"]["n"] == len(questions) == len(mm["questions"])
    assert mm["vanilla"]["n"] == len(questions)
    # A question is solved under CircularEval only if all its rotations are.
    for q, solved in mm["questions"].items():
        rows = [r for r in records if int(r["item_id"].split("/")[1]) % 1_000_000 == int(q)]
        assert solved == all(r["correct"] for r in rows)
    assert mm["circular"]["mean"] <= mm["vanilla"]["mean"]
    assert sum(c["circular"]["n"] for c in mm["categories"].values()) == len(questions)
    assert sum(c["circular"]["n"] for c in mm["l2"].values()) == len(questions)


def test_render_table(result):
    typed, _ = result
    value = as_json(typed)
    table = render_table(typed)
    assert isinstance(table, Table)
    assert table.row_count == 1 + 1 + 3 + 2  # mcq, cloze, 3 ROUGE, circular + vanilla
    console = Console(width=120, record=True)
    console.print(table)
    text = console.export_text()
    assert "accuracy (option_text)" in text
    overall = value["tasks"]["mcq"]["intervals"]["overall"]
    assert f"±{50 * (overall[1] - overall[0]):.1f}" in text


def test_mllmu_scorer_end_to_end_and_its_pool(tiny_dir, world):
    value = as_json(
        evaluate(
            tiny_dir, world, "forget_5", ["mcq"], scorer="mllmu", max_new_tokens=3, progress=False
        )
    )
    assert value["tasks"]["mcq"]["scorer"] == "mllmu"
    assert all("response" in r["extras"] for r in value["tasks"]["mcq"]["records"])
    root = world / "mllmu"
    forget = {
        p.id
        for c in ("forget_5", "forget_10", "forget_15", "forget_50")
        for p in read_mllmu(root, c)
    }
    retain = {p.id for p in read_mllmu(root, "Retain_Set")}
    pool = default_fewshot_pool(root, exclude=retain)
    assert pool and not {i.entity_id for i in pool} & (forget | retain)


def test_bad_input_fails_before_the_model_loads(world, tmp_path):
    missing_model = tmp_path / "no-model"  # never reached: every error below comes first
    with pytest.raises(ConfigError, match="unknown task 'vqa'"):
        evaluate(missing_model, world, "Full_Set", "mcq,vqa")
    with pytest.raises(ConfigError, match=r"unknown split 'forget_99'.*Full_Set.*forget_10"):
        evaluate(missing_model, world, "forget_99", "mcq")
    with pytest.raises(ConfigError, match="no split given"):
        evaluate(missing_model, world, None, "cloze")
    with pytest.raises(ConfigError, match="unknown MCQ scorer"):
        evaluate(missing_model, world, "Full_Set", "mcq", scorer="judge")
    with pytest.raises(DataError, match="no MMBench TSV"):
        evaluate(missing_model, world / "mllmu", None, "mmbench")
    with pytest.raises(DataError, match="no items for task 'mcq'"):
        evaluate(missing_model, world, "ft_Data", "mcq")
    with pytest.raises(ConfigError, match="no task given"):
        parse_tasks(" , ")
    assert parse_tasks("gen, mcq") == ["mcq", "gen"]


def test_adapter_is_applied(tiny, tiny_dir, world, tmp_path):
    """A saved LoRA adapter with non-zero weights changes the scores, and the suite's scores
    equal those of the same adapter held in memory."""
    model, processor = tiny
    peft_model = apply_scope(copy.deepcopy(model), UpdateScope(rank=4, alpha=4))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)  # LoRA starts as the identity (B = 0)
    save_adapter(peft_model, tmp_path / "adapter")
    kwargs = {"batch_size": 8, "progress": False}
    plain = as_json(evaluate(tiny_dir, world, "forget_5", "mcq", **kwargs))["tasks"]["mcq"][
        "records"
    ]
    adapted = as_json(
        evaluate(tiny_dir, world, "forget_5", "mcq", adapter=tmp_path / "adapter", **kwargs)
    )
    records = adapted["tasks"]["mcq"]["records"]
    assert adapted["meta"]["adapter"] == str(tmp_path / "adapter")
    assert [r["extras"]["logprobs"] for r in records] != [r["extras"]["logprobs"] for r in plain]
    items = [i for p in read_mllmu(world / "mllmu", "forget_5") for i in profile_items(p)]
    in_memory = score_mcq(peft_model.eval(), processor, [i for i in items if i.kind == "mcq"])
    by_id = {r.item_id: r.extras["logprobs"] for r in in_memory}
    for record in records:
        expected = by_id[record["item_id"]]
        assert all(abs(record["extras"]["logprobs"][k] - v) < 1e-4 for k, v in expected.items())
