"""The robustness scenario: quantization and relearning attacks on the last states."""

from __future__ import annotations

import json

import pytest

from pulse.errors import ConfigError
from pulse.protocol.config import parse_config
from pulse.protocol.runner import run_protocol
from pulse.protocol.scenarios import robustness
from pulse.report import write_report
from pulse.report.content import build_content


def _config(mini_config):
    mini_config["methods"] = [{"method": "ga", "lr": 5e-3, "max_steps": 6}]
    for name in ("pretrained", "sequential", "scope"):
        mini_config["scenarios"][name] = {"enabled": False}
    mini_config["scenarios"]["robustness"] = {
        "enabled": True,
        "quantize": {"bits": [4]},
        "relearn": {"steps": 8, "lr": 5e-3, "batch_size": 8},
    }
    return parse_config(mini_config)


def _rows(run_dir):
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["scenario"] == "robustness"]


def _evaluations(run_dir):
    """Every evaluation the run stored, by its state name."""
    found = {}
    for path in (run_dir / "evals").glob("*.json"):
        data = json.loads(path.read_text())
        if "state" in data:
            found.setdefault(data["state"], []).append(data)
    return found


def test_attacks_rows_relearning_and_resume(mini_config, tmp_path, no_new_work):
    # The base model never saw the fictitious people: it stands in for their oracle.
    mini_config["models"]["oracle"] = mini_config["models"]["base"]
    config = _config(mini_config)
    run_dir = tmp_path / "run"
    run_protocol(config, run_dir, progress=False)
    rows = _rows(run_dir)
    settings = {r["setting"] for r in rows}
    assert settings == {"finetuned no attack", "finetuned quantize-4", "finetuned relearn"}
    acc = {
        (r["method"], r["setting"], r["split"], r["modality"]): r
        for r in rows
        if r["metric"] == "accuracy"
    }
    for method in ("before", "ga"):
        for setting in settings:
            for split in ("forget", "relearned", "held_back"):
                assert (method, setting, split, "all") in acc
            # what the table reads only: no retain people, no general capability
            assert not [r for r in rows if r["method"] == method and r["split"] == "retain"]
            assert not [r for r in rows if r["method"] == method and r["metric"] == "circular"]
    # An attacked state is scored on the forget people's questions only, without the general
    # set; the unattacked state is its own evaluation in the run (all people, general set).
    evaluations = _evaluations(run_dir)
    attacked = {name: e for name, e in evaluations.items() if "|" in name}
    assert {name.split("|")[1].split(":")[0] for name in attacked} == {"quantize-4", "relearn"}
    assert len(attacked) == 3 * 2  # before, ga and the oracle, two attacks
    for name, (evaluation,) in attacked.items():
        forget = set(evaluation["people"])
        assert evaluation["general"] is None
        assert {r["entity_id"] for r in evaluation["mcq"]} == forget
        (plain,) = [
            e
            for e in evaluations[name.split("|")[0]]
            if e["config"] == evaluation["config"] and e["general"] is not None
        ]
        assert forget < set(plain["people"])
    (relearned,) = next(
        e for n, e in attacked.items() if n.startswith("request:") and "relearn" in n
    )
    assert acc["ga", "finetuned relearn", "forget", "all"]["n"] == len(relearned["mcq"])
    change = {
        (r["method"], r["setting"], r["split"]): r
        for r in rows
        if r["metric"] == "attack_change" and r["modality"] == "all"
    }
    # the change under the attack is paired against the same state unattacked
    for split in ("forget", "relearned", "held_back"):
        row = change["ga", "finetuned relearn", split]
        unattacked = acc["ga", "finetuned no attack", split, "all"]["value"]
        attacked = acc["ga", "finetuned relearn", split, "all"]["value"]
        assert row["value"] == pytest.approx(attacked - unattacked)
        assert row["low"] is not None and row["low"] <= row["value"] <= row["high"]
    # The session's tiny models answer these people at about chance, so whether relearning
    # brings forgotten knowledge back is not measurable here; what is: the attacked state is
    # scored on the same relearned-half questions as the unattacked one.
    before = acc["ga", "finetuned no attack", "relearned", "all"]
    after = acc["ga", "finetuned relearn", "relearned", "all"]
    assert after["n"] == before["n"] > 0
    # beyond the oracle under the same attack, and under no attack beyond the oracle as it is
    beyond = {
        (r["method"], r["setting"], r["split"]): r["value"]
        for r in rows
        if r["metric"] == "beyond_oracle" and r["modality"] == "all"
    }
    for method in ("before", "ga"):
        for setting in settings:
            assert (method, setting, "forget") in beyond
    plain_oracle = acc["oracle", "finetuned no attack", "forget", "all"]["value"]
    assert beyond["ga", "finetuned no attack", "forget"] == pytest.approx(
        acc["ga", "finetuned no attack", "forget", "all"]["value"] - plain_oracle
    )
    # a quantized state is loaded, answers and is compared with itself unattacked
    # (tests/protocol/test_attack_quantize.py checks that quantizing changes the weights)
    assert change["ga", "finetuned quantize-4", "forget"]["value"] is not None
    # every attacked state is a finished stage: a second run trains and evaluates nothing
    manifest = json.loads((run_dir / "manifest.json").read_text())
    done = {name for name, s in manifest["stages"].items() if name.startswith("robustness/")}
    assert "robustness/finetuned/relearn/ga" in done

    with no_new_work():
        run_protocol(config, run_dir, progress=False)
    assert _rows(run_dir) == rows
    # the robustness table and its reading
    write_report(run_dir)
    report = (run_dir / "report.md").read_text()
    assert "Robustness to attacks" in report and "Change under the attack" in report
    assert "robustness:" not in report.split("## Tables")[0]  # nothing missing
    assert (run_dir / "figures" / "robustness_robustness.png").is_file()
    (table,) = [t for t in build_content(run_dir).tables if t.kind == "robustness"]
    assert all(line in report for line in robustness.reading(table))


def test_robustness_section_checks_and_digest(mini_config):
    plain = parse_config(dict(mini_config))
    same = parse_config(
        {**mini_config, "scenarios": {**mini_config["scenarios"], "robustness": {}}}
    )
    assert plain.digest() == same.digest()
    # the quantization backend, added later, is left out of the digest at its default
    on = {"enabled": True, "quantize": {"bits": [4]}}
    written = {"enabled": True, "quantize": {"bits": [4], "backend": "auto"}}
    chosen = {"enabled": True, "quantize": {"bits": [4], "backend": "bitsandbytes"}}
    digests = [
        parse_config(
            {**mini_config, "scenarios": {**mini_config["scenarios"], "robustness": section}}
        ).digest()
        for section in (on, written, chosen)
    ]
    assert digests[0] == digests[1] != digests[2]
    for bad, words in (
        ({"relearn": {"steps": 0}}, "robustness.relearn.steps"),
        ({"quantize": {"bits": [3]}}, "robustness.quantize.bits"),
        ({"quantize": {"backend": "gptq"}}, "robustness.quantize.backend"),
        ({"attacks": ["prune"]}, "robustness.attacks"),
        ({"targets": ["pebench"]}, "has no states to attack"),
    ):
        data = {**mini_config, "scenarios": {**mini_config["scenarios"], "robustness": bad}}
        with pytest.raises(ConfigError, match=words) as caught:
            parse_config(data)
        assert "\n" not in str(caught.value)


def test_scope_states_and_every_training_seed_are_attacked(mini_config, tmp_path):
    mini_config["methods"] = [{"method": "ga", "lr": 5e-3, "max_steps": 2}]
    for name in ("finetuned", "pretrained", "sequential"):
        mini_config["scenarios"][name] = {"enabled": False}
    mini_config["eval"]["general"] = False
    mini_config["repeats"] = 2
    mini_config["scenarios"]["robustness"] = {
        "enabled": True,
        "attacks": ["quantize"],
        "quantize": {"bits": [4]},
        "targets": ["scope"],
    }
    run_dir = tmp_path / "run"
    run_protocol(parse_config(mini_config), run_dir, progress=False)
    rows = [r for r in _rows(run_dir) if r["metric"] == "accuracy" and r["modality"] == "all"]
    # one row group per scope of the ablation, each against its own unattacked state
    assert {r["setting"] for r in rows} == {
        f"scope/{scope} {attack}"
        for scope in ("llm", "projector+llm")
        for attack in ("no attack", "quantize-4")
    }
    ga = [r for r in rows if r["method"] == "ga" and r["split"] == "forget"]
    for setting in ("scope/llm quantize-4", "scope/projector+llm quantize-4"):
        # each training seed's state attacked (a row per repeat) and the seeds pooled
        mine = {r["repeat"]: r for r in ga if r["setting"] == setting}
        assert set(mine) == {0, 1, None}, mine.keys()
        assert mine[None]["seeds"] == 2
        assert mine[None]["value"] == pytest.approx((mine[0]["value"] + mine[1]["value"]) / 2)
    # four request states (2 scopes x 2 seeds) and before, each quantized once
    quantized = [name for name in _evaluations(run_dir) if name.endswith("|quantize-4:torchao")]
    assert len(quantized) == 5
    assert sum(name.startswith("request:") for name in quantized) == 4
