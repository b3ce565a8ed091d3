"""Generalisation splits: every state also on its people's Test_Set questions."""

from __future__ import annotations

import json

from pulse.data.mllmu import read_mllmu
from pulse.protocol.config import parse_config
from pulse.protocol.generalisation import twin_split, unseen_items
from pulse.protocol.metrics.general import GENERAL_SPLIT
from pulse.protocol.runner import run_protocol
from pulse.report import write_report


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def test_every_state_gets_test_set_twins_of_its_splits(mini_config, small_world, tmp_path):
    mini_config["methods"] = [{"method": "ga"}]
    for name in ("pretrained", "sequential", "scope"):
        mini_config["scenarios"][name] = {"enabled": False}
    run_dir = tmp_path / "run"
    run_protocol(parse_config(mini_config), run_dir, progress=False)
    rows = [r for r in _rows(run_dir) if r["scenario"] == "finetuned" and r["status"] == "ok"]
    test = read_mllmu(small_world / "mllmu", "Test_Set")
    per_person = {p.id: len(unseen_items(p)) for p in test}
    forget = (run_dir / "splits" / "finetuned" / "forget.txt").read_text().split()
    for method in ("before", "ga"):
        acc = {
            (r["split"], r["modality"]): r
            for r in rows
            if r["method"] == method and r["metric"] == "accuracy"
        }
        for split in ("forget_test", "retain_test"):
            for modality in ("multimodal", "text", "all"):
                row = acc[split, modality]
                assert row["low"] is not None and row["low"] <= row["value"] <= row["high"]
        assert acc["forget_test", "all"]["n"] == sum(per_person[p] for p in forget)
        # Full_Set and Test_Set are different questions: separate rows, the same people
        assert acc["forget", "all"]["n"] == acc["forget_test", "all"]["n"]
    ga = {
        (r["split"], r["modality"]): r
        for r in rows
        if r["method"] == "ga" and r["metric"] == "accuracy"
    }
    assert ga["forget_test", "all"]["change_low"] is not None
    # the general capability is measured once per state (on the Full_Set evaluation)
    assert any(r["split"] == GENERAL_SPLIT for r in rows)
    assert not any(r["split"] == twin_split(GENERAL_SPLIT) for r in rows)
    # reported beside the Full_Set columns
    write_report(run_dir)
    assert "Forget accuracy, Test_Set" in (run_dir / "report.md").read_text()


def test_test_items_go_round_the_unseen_renderings(small_world):
    meta = json.loads((small_world / "world.json").read_text())
    held_out = set(meta["renderings"]["held_out"])
    profile = read_mllmu(small_world / "mllmu", "Test_Set")[0]
    images = {data: path for data, path in profile.extra_images}
    shown = [i.image for i in unseen_items(profile) if i.image is not None]
    assert len(set(shown)) == len(held_out) == len(images)
    assert all(int(images[s].rsplit("/", 1)[-1].split(".")[0]) in held_out for s in shown)
    assert all("/test/" in i.id for i in unseen_items(profile))
