"""Run configs: defaults, files, overrides and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pulse.errors import ConfigError
from pulse.protocol.config import RunConfig, apply_overrides, load_config, parse_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_demo_config_file_spells_out_the_defaults():
    assert load_config(CONFIGS / "demo.yaml") == RunConfig()
    # the demo attacks the finetuned scenario's last states (on for the embedded world only)
    assert "robustness" in RunConfig().enabled()
    local = {"models": {"base": "b", "finetuned": "f"}}
    assert "robustness" not in parse_config(local).enabled()


# leaderboard.yaml is `pulse leaderboard`'s config, not a run's (tests/protocol/test_leaderboard.py)
RUN_CONFIGS = [p for p in sorted(CONFIGS.glob("*.yaml")) if p.name != "leaderboard.yaml"]


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_is_valid(path):
    config = load_config(path)
    assert config.enabled()


def test_overrides_reach_nested_keys_and_parse_values():
    config = load_config(None, ["train.lr=1e-4", "scenarios.pretrained.enabled=false", "seed=7"])
    assert config.train.lr == 1e-4 and config.seed == 7
    assert "pretrained" not in config.enabled()
    data = apply_overrides({"a": {"b": 1}}, ["a.c=[1, 2]"])
    assert data == {"a": {"b": 1, "c": [1, 2]}}


def test_checkpoints_replace_the_world():
    config = parse_config({"models": {"finetuned": "/m"}})
    assert config.models.world is None and config.models.finetuned == Path("/m")


def test_method_labels_and_defaults():
    config = parse_config(
        {"methods": [{"method": "npo", "label": "npo_b1", "params": {"beta": 1.0}, "lr": 1e-4}]}
    )
    entry = config.methods_of("finetuned")[0]
    assert entry.name == "npo_b1" and entry.train(config.train).lr == 1e-4
    assert config.digest() != RunConfig().digest()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"scenarios": {"sequential": {"requests": "five"}}}, "scenarios.sequential.requests: "),
        ({"methods": [{"method": "nope"}]}, "methods.0: unknown unlearning method 'nope'"),
        ({"scenario": {}}, "scenario: unknown key"),
        ({"scenarios": {"scope": {"scopes": ["llm+brain"]}}}, "unknown component 'brain'"),
        ({"scenarios": {"pretrained": {"top": 5, "forget": 6}}}, "forget (6) must be below top"),
        ({"methods": [{"method": "ga"}, {"method": "ga"}]}, "label 'ga' is used twice"),
        ({"methods": [{"method": "ga", "label": "before"}]}, "'before' is reserved"),
        # A method's stage is <scenario>/<label>: these would be read as the scenario's own.
        ({"methods": [{"method": "ga", "label": "contrasts"}]}, "'contrasts' is reserved"),
        ({"methods": [{"method": "npo", "label": "matched"}]}, "'matched' is reserved"),
        ({"methods": [{"method": "ga", "label": "ga/repeat-0"}]}, "'/' separates"),
        (
            {"scenarios": {"sequential": {"adapters": "merge", "reference": "initial"}}},
            "is not supported",
        ),
        ({"models": {"world": None}}, "no model"),
        ({"train": {"pack_tokens": -1}}, "train.pack_tokens: "),
        ({"repeats": 0}, "repeats: Input should be greater than or equal to 1, got 0"),
        ({"repeats": "three"}, "repeats: "),
    ],
)
def test_bad_configs_fail_in_one_line(data, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "exp.yaml")
    text = str(caught.value)
    assert text.startswith("exp.yaml: ") and message in text and "\n" not in text


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(listing)
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["train.lr"])


def test_a_scenario_replaces_the_train_keys_it_gives():
    config = parse_config(
        {
            "train": {"lr": 5e-4, "epochs": 1, "pairs_per_id": 8},
            "scenarios": {"sequential": {"train": {"epochs": 2, "scope": {"projector": "full"}}}},
            "methods": [{"method": "ga"}, {"method": "npo", "epochs": 3}],
        }
    )
    sequential = config.train_of("sequential")
    assert (sequential.lr, sequential.epochs, sequential.pairs_per_id) == (5e-4, 2, 8)
    assert sequential.scope.projector == "full" and sequential.scope.rank == 8  # a scope as a whole
    # The finetuned scenario's own default: its requests evaluated along the way.
    assert config.train_of("finetuned") == config.train.model_copy(update={"eval_every": "1 epoch"})
    assert config.methods[1].train(sequential).epochs == 3  # a method's own settings come last
    # The saved form keeps the given keys only, so it reads back to the same settings.
    saved = config.to_dict()
    assert set(saved["scenarios"]["sequential"]["train"]) == {"epochs", "scope"}
    assert parse_config(saved).train_of("sequential") == sequential
    # The default: every pair of a celebrity, 16 of each fictitious person's.
    default = RunConfig()
    assert default.train_of("pretrained").pairs_per_id is None
    assert default.train_of("finetuned").pairs_per_id == 16
    with pytest.raises(ConfigError, match=r"scenarios\.sequential\.train\.epochs"):
        parse_config({"scenarios": {"sequential": {"train": {"epochs": "two"}}}})
    with pytest.raises(ConfigError, match=r"scenarios\.scope\.train\.nope: unknown key"):
        parse_config({"scenarios": {"scope": {"train": {"nope": 1}}}})


def test_repeats_give_the_training_seeds_and_leave_older_run_directories_resumable():
    assert parse_config({"seed": 4, "repeats": 3}).training_seeds() == [4, 5, 6]
    assert RunConfig().training_seeds() == [0]
    # A run without repeats hashes as if the key did not exist (versions before repeats); the
    # values pin the hash, so a change that would orphan run directories is a deliberate one
    # (the last: the default world halved for the demo's time budget, so the pretrained
    # scenario keeps 14 celebrities and forgets 6, sequential splits its forget set in 3, a
    # request makes two passes over its pairs and the finetuned one is scored half way).
    assert RunConfig().digest() == "7a8424a50628bd36"
    assert parse_config({"seed": 3, "train": {"lr": 1e-4}}).digest() == "6802eacf6bf3c559"
    # Evaluation along requests off and matched forgetting's target unset hash alike.
    off = {"finetuned": {"train": None}, "pretrained": {"train": {"pairs_per_id": None}}}
    assert parse_config({"scenarios": off}).digest() == "0f081f551f3a0cd2"
    assert parse_config({"scenarios": off, "matched": {"target": None}}).digest() == (
        "0f081f551f3a0cd2"
    )
    assert parse_config({"repeats": 2}).digest() != RunConfig().digest()
