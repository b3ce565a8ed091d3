"""``pulse leaderboard``: every registered method (or a listed subset) on the same protocol,
ranked by a stated rule.

Two run directories under the leaderboard's folder, each a normal run (resumable, reported):

- ``sweep/``: the learning-rate sweep. Each method runs once per learning rate (the run's
  ``train.lr`` times each of ``lr_factors``; a training-free method once) on the ``sweep_on``
  scenario, one training seed, without membership inference; each method keeps the learning
  rate the rule scores best there.
- ``board/``: the chosen learning rates on every scenario of ``scenarios`` under ``repeats``
  training seeds (the intervals cover training as well as questions), with membership
  inference and, when ``attacks`` are listed, the robustness scenario on them. Its
  ``leaderboard.md`` / ``.csv`` / ``.html`` hold the ranked table (:mod:`pulse.report.leaderboard`).

The world and its models (and the oracles) are built once, in the leaderboard's folder, and
reused by both runs. Selecting each method's learning rate on the scenario it is then ranked on
favours every method alike; the sweep's own table is kept beside the ranking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pulse.assignments import parse_assignment
from pulse.errors import ConfigError
from pulse.protocol.config import (
    RunConfig,
    TrainSettings,
    apply_overrides,
    config_error,
    parse_config,
    read_yaml,
)

SWEEP_DIR = "sweep"
BOARD_DIR = "board"
RANKED = ("finetuned", "pretrained")  # the scenarios a leaderboard may rank methods on


class RuleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "matched"
    weights: dict[str, float] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from pulse.report.ranking import get_rule

        get_rule(name)
        return name

    @model_validator(mode="after")
    def _known_weights(self) -> RuleConfig:
        from pulse.report.ranking import get_rule, weights_of

        weights_of(get_rule(self.name), self.weights)  # an unknown weight: one line, up front
        return self


class LeaderboardConfig(BaseModel):
    """The ``pulse leaderboard`` config (every key optional; configs/leaderboard.yaml shows
    the embedded default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: Path | None = None  # a run config for models, data and training (None: the demo's)
    methods: list[str] | None = None  # None: every registered method
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)  # per method
    lr_factors: list[float] = Field(default_factory=lambda: [0.3, 1.0, 3.0], min_length=1)
    sweep_on: Literal["finetuned", "pretrained"] = "finetuned"
    scenarios: list[Literal["finetuned", "pretrained"]] = Field(
        default_factory=lambda: list(RANKED), min_length=1
    )
    repeats: int = Field(2, ge=1)  # training seeds per request on the board
    attacks: list[Literal["quantize", "relearn"]] = Field(default_factory=list)
    rule: RuleConfig = Field(default_factory=RuleConfig)

    @field_validator("lr_factors")
    @classmethod
    def _positive(cls, factors: list[float]) -> list[float]:
        if any(f <= 0 for f in factors) or len(set(factors)) != len(factors):
            raise ValueError("expected distinct factors > 0")
        return factors

    @field_validator("methods")
    @classmethod
    def _registered(cls, methods: list[str] | None) -> list[str] | None:
        from pulse.methods import get_method

        for name in methods or ():
            try:
                get_method(name)
            except ConfigError as exc:  # said under the key that named it
                raise ValueError(str(exc)) from None
        if methods is not None and (not methods or len(set(methods)) != len(methods)):
            raise ValueError("expected a list of distinct method names")
        return methods

    def method_names(self) -> list[str]:
        from pulse.methods import method_names

        return list(self.methods) if self.methods is not None else method_names()


def load_leaderboard_config(
    path: Path | None, overrides: list[str] | None = None
) -> LeaderboardConfig:
    """A leaderboard config (``None``: the embedded default) with ``--set`` overrides."""
    data: Any = {}
    source = "leaderboard config"
    if path is not None:
        source = str(path)
        data = read_yaml(Path(path))
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
    if overrides:
        data = apply_overrides(data, overrides)
    from pydantic import ValidationError

    try:
        config = LeaderboardConfig.model_validate(data)
    except ValidationError as exc:  # worded as a run config's: "unknown key", the value given
        keys = [parse_assignment(text)[0] for text in overrides or ()]
        raise config_error(exc, source, keys) from None
    if config.run is not None and path is not None and not config.run.is_absolute():
        config = config.model_copy(update={"run": Path(path).parent / config.run})
    return config


def base_data(config: LeaderboardConfig, root: Path) -> dict[str, Any]:
    """The run config the two runs start from, as plain data; the world and its models live in
    the leaderboard's folder (shared by both runs)."""
    data: dict[str, Any] = {}
    if config.run is not None:
        try:
            data = read_yaml(config.run)
        except ConfigError as exc:
            raise ConfigError(f"run: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"run: {config.run}: expected a mapping of sections")
    # Only the ranked scenarios run: the others are off before the config is checked, so a
    # setting they alone would refuse (a sequential chain longer than the forget set) is moot.
    from pulse.protocol.registry import scenario_types

    ranked = {config.sweep_on, *config.scenarios}
    sections = dict(data.get("scenarios") or {})
    for kind in scenario_types():
        if kind.name not in ranked:
            sections[kind.name] = {**(sections.get(kind.name) or {}), "enabled": False}
    data = {**data, "scenarios": sections}
    base = parse_config(data, str(config.run or "the embedded default"))
    data = base.to_dict()
    # Written out in full, every training key would read back as set, and an unset one means
    # something: precision left to the device (pulse.protocol.precision), each scenario's own
    # evaluation along its requests (pulse.protocol.config.TRAIN_ADDED_LATER). So the section
    # keeps what the run config gave, and the rest stays unset.
    data["train"] = base.train.model_dump(mode="json", exclude_unset=True)
    from pulse.report.ranking import MATCHED_RULE

    if config.rule.name == MATCHED_RULE.name and "eval_general" not in data["train"]:
        # The rule charges the general capability lost where a path meets the target: measured
        # at every point, a method that reaches it pays for what it lost on the way as one that
        # does not pays at the end of its budget.
        data["train"]["eval_general"] = True
    world = data["models"].get("world")
    if world is not None and world.get("dir") is None:
        world["dir"] = str(root)
    return data


def sweep_entries(config: LeaderboardConfig, base_lr: float) -> list[dict[str, Any]]:
    """One method entry per method with its learning rates as a sweep (``lr: [...]``: the run
    config expands it into one entry per value, labelled ``<method>[lr=...]``); a
    training-free method once, without one."""
    from pulse.methods import get_method

    entries = []
    for name in config.method_names():
        params = config.params.get(name, {})
        entry = {"method": name, "params": params}
        if not get_method(name, params).edits:
            entry["lr"] = [base_lr * factor for factor in config.lr_factors]
        entries.append(entry)
    return entries


def _scenarios(data: dict[str, Any], enabled: list[str], attacks: list[str]) -> dict[str, Any]:
    sections = {}
    for name, spec in data["scenarios"].items():
        sections[name] = {**spec, "enabled": name in enabled}
    if attacks:
        robustness = sections.get("robustness", {})
        sections["robustness"] = {
            **robustness,
            "enabled": True,
            "attacks": attacks,
            "targets": enabled,
        }
    return sections


def sweep_config(config: LeaderboardConfig, data: dict[str, Any]) -> RunConfig:
    """The learning-rate sweep: one seed, the sweep scenario alone, membership inference only
    where the rule scores it (a rule reading PrivLeak would find no score to choose by)."""
    from pulse.report.ranking import get_rule

    privacy = data.get("privacy", {})
    if get_rule(config.rule.name).privacy and not privacy.get("enabled", True):
        raise ConfigError(
            f"rule: {config.rule.name} ranks by PrivLeak, which the run config turns off "
            "(privacy.enabled: false)"
        )
    sweep = {
        **data,
        "repeats": 1,
        "methods": sweep_entries(config, TrainSettings.model_validate(data["train"]).lr),
        "scenarios": _scenarios(data, [config.sweep_on], []),
        "privacy": {**privacy, "enabled": get_rule(config.rule.name).privacy},
    }
    return parse_config(sweep, "leaderboard sweep")


def board_config(
    config: LeaderboardConfig, data: dict[str, Any], chosen: dict[str, dict[str, Any]]
) -> RunConfig:
    """The chosen entry of each method (labelled by the method's name) on every scenario."""
    entries = [{**entry, "label": name} for name, entry in chosen.items()]
    board = {
        **data,
        "repeats": config.repeats,
        "methods": entries,
        "scenarios": _scenarios(data, list(config.scenarios), list(config.attacks)),
    }
    return parse_config(board, "leaderboard board")


def run_leaderboard(
    config: LeaderboardConfig, out: Path, *, progress: bool = True, device: Any = None
) -> Path:
    """Run (or resume) the sweep and the board under ``out``; returns the board's run
    directory, with its report and leaderboard files written."""
    from pulse.protocol.runner import run_protocol
    from pulse.report import write_report
    from pulse.report.leaderboard import choose_learning_rates, write_leaderboard

    data = base_data(config, out)
    sweep = sweep_config(config, data)
    sweep_store = run_protocol(sweep, out / SWEEP_DIR, progress=progress, device=device)
    write_report(sweep_store.root)
    entries = {e.name: e.model_dump(mode="json", exclude_none=True) for e in sweep.methods}
    chosen = choose_learning_rates(sweep_store.root, config, entries)
    swept = {name: (e["method"], e.get("lr")) for name, e in entries.items()}
    board = board_config(config, data, chosen)
    board_store = run_protocol(board, out / BOARD_DIR, progress=progress, device=device)
    write_report(board_store.root)
    write_leaderboard(board_store.root, sweep_store.root, config, chosen, swept)
    return board_store.root
