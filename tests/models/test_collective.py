"""Sharded evaluation over two CPU processes (gloo) gathers the same per-item records as one
process, rank 0's answers and errors reach every process, and a single-process step runs
outside the group (:mod:`pulse.models.collective`).

The two processes are started by :func:`pulse.models.parallel.run_data_parallel` (about 10 s on
a busy 2-core machine), as a launcher would start them."""

from __future__ import annotations

import copy
import os

import pytest
import torch

from pulse.data.mllmu import profile_items, read_mllmu
from pulse.data.mmbench import read_mmbench
from pulse.data.schema import ItemKind
from pulse.errors import ConfigError
from pulse.eval.mcq import MCQConfig, score_mcq
from pulse.eval.mmbench import evaluate_mmbench
from pulse.eval.records import records_to_dicts
from pulse.models import collective
from pulse.models.parallel import run_data_parallel

CFG = MCQConfig(batch_size=4, scorer="option_text")


def _items(world):
    profiles = read_mllmu(world / "mllmu", "forget_50")[:3]
    items = [i for p in profiles for i in profile_items(p) if i.kind is ItemKind.MCQ]
    return items[:-1]  # an odd count: blocks of unequal sizes


def _rows(world):
    return [r for r in read_mmbench(world / "mmbench" / "dev.tsv") if r.index % 1_000_000 < 3]


def _evaluate(model, processor, items, rows, shard):
    records = score_mcq(model, processor, items, CFG, shard=shard)
    general = evaluate_mmbench(model, processor, rows, CFG, shard=shard)
    return {"records": records_to_dicts(records), "general": general.to_dict()}


def _ranks(model, processor, items, rows):
    """One process of two: sharded scores, and what rank 0 alone computed or raised."""
    collective.join(torch.device("cpu"))
    out = _evaluate(model, processor, items, rows, shard=True)
    out["rank"] = collective.rank()
    out["answer"] = collective.from_main(lambda: f"rank {collective.rank()} wrote this")
    try:
        collective.from_main(_refuse)
        out["error"] = None
    except ConfigError as exc:
        out["error"] = str(exc)
    out["gathered"] = collective.gathered(collective.rank())
    # A single-process step: a fresh process without the launcher's variables.
    out["solo"] = collective.solo(os.getenv, "WORLD_SIZE", "not in a launched run")
    # Every process compares its own gathered records with rank 0's.
    out["same_everywhere"] = all(r == out["records"] for r in collective.gathered(out["records"]))
    return out


def _refuse() -> None:
    raise ConfigError("only rank 0 sees this file")


def test_sharded_evaluation_gathers_the_records_of_one_process(small_world, tiny_llava):
    model, processor = copy.deepcopy(tiny_llava[0]), tiny_llava[1]
    items, rows = _items(small_world), _rows(small_world)
    assert len(items) % 2 == 1 and len(rows) % 2 == 1  # blocks of unequal sizes
    alone = _evaluate(model, processor, items, rows, shard=False)
    two = run_data_parallel(_ranks, model, (processor, items, rows), 2, threads=1)
    assert two["rank"] == 0 and two["gathered"] == [0, 1]
    assert two["answer"] == "rank 0 wrote this"
    assert two["error"] == "only rank 0 sees this file"  # raised in both, with its class
    assert two["same_everywhere"]
    assert two["solo"] == "not in a launched run"  # rank 0's step, its result everywhere
    assert len(two["records"]) == len(alone["records"])
    for mine, theirs in zip(two["records"], alone["records"], strict=True):
        assert _same(mine, theirs), (mine, theirs)
    for mine, theirs in zip(two["general"]["records"], alone["general"]["records"], strict=True):
        assert _same(mine, theirs), (mine, theirs)
    assert {k: v for k, v in two["general"].items() if k != "records"} == {
        k: v for k, v in alone["general"].items() if k != "records"
    }


def _same(mine, theirs) -> bool:
    """The same record, its scores to float rounding (batches of other shapes)."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        return mine.keys() == theirs.keys() and all(_same(mine[k], theirs[k]) for k in mine)
    if isinstance(mine, float) and isinstance(theirs, float):
        return mine == pytest.approx(theirs, abs=1e-5)
    return mine == theirs


@pytest.mark.parametrize(("value", "hours"), [(None, 6.0), ("", 6.0), ("0.5", 0.5), (" 12 ", 12.0)])
def test_the_wait_for_peers_reads_hours_fractions_included(monkeypatch, value, hours):
    if value is None:
        monkeypatch.delenv(collective.WAIT_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(collective.WAIT_VARIABLE, value)
    assert collective.wait_limit().total_seconds() == hours * 3600


@pytest.mark.parametrize("value", ["soon", "0", "-1", "inf", "nan"])
def test_a_bad_wait_for_peers_is_one_line(monkeypatch, value):
    # Read once at import before: "0.5" was a ValueError traceback from every pulse command.
    monkeypatch.setenv(collective.WAIT_VARIABLE, value)
    with pytest.raises(ConfigError, match=r"^PULSE_DIST_WAIT_HOURS: expected a positive number"):
        collective.wait_limit()
