"""Ranking rules of the leaderboard: a method's numbers on one scenario -> a score, lower is
better. A rule is registered by name (``register_rule``) and chosen in the leaderboard config
(``rule: {name: ..., weights: {...}}``); the leaderboard states the rule it used.

A method's numbers (:class:`Standing`) are read from the run's rows by column key:
``forget`` / ``retain`` (MCQ accuracy, all modalities), ``forget_distance`` /
``retain_distance`` (accuracy minus the oracle's), ``forget_quality``, ``general`` and
``general_change`` (circular accuracy and its change against the model before),
``chance`` (the forget items' guessing floor), ``mia_auc`` and ``privleak`` (LOSS score),
``recovery <attack>`` and ``seconds`` (training time per request); at matched forgetting
(:mod:`pulse.protocol.trajectory`): ``matched_target``, ``matched_step`` (−1: not reached),
``matched_retain``, ``matched_general``, beside ``retain_before`` / ``general_before``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pulse.errors import ConfigError
from pulse.registry import Registry


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Standing:
    """One method's numbers on one scenario, by column key."""

    scenario: str
    label: str
    values: dict[str, Estimate] = field(default_factory=dict)

    def get(self, key: str) -> float | None:
        found = self.values.get(key)
        return None if found is None else found.value


@dataclass(frozen=True)
class Rule:
    name: str
    statement: str  # in words, with {weights} filled from the config
    score: Callable[[Standing, Mapping[str, float]], float | None]
    weights: dict[str, float]  # the defaults, and the only keys a config may set
    privacy: bool = False  # scores membership rows (privleak): the runs it ranks must measure them


_RULES: Registry[Rule] = Registry("ranking rule")


def register_rule(rule: Rule) -> Rule:
    return _RULES.add(rule.name, rule)


def rule_names() -> list[str]:
    return [r.name for r in _RULES.entries()]


def get_rule(name: str) -> Rule:
    found = _RULES.get(name)
    if found is None:
        raise ConfigError(
            f"rule: unknown ranking rule {name!r}; expected one of {', '.join(rule_names())}"
        )
    return found


def weights_of(rule: Rule, given: Mapping[str, float]) -> dict[str, float]:
    unknown = sorted(set(given) - set(rule.weights))
    if unknown:
        raise ConfigError(
            f"rule {rule.name!r}: unknown weight {unknown[0]!r} (its weights: "
            f"{', '.join(rule.weights)})"
        )
    return {**rule.weights, **given}


def describe(rule: Rule, weights: Mapping[str, float]) -> str:
    return rule.statement.format(**{k: f"{v:g}" for k, v in weights.items()})


def _oracle_gap(s: Standing, w: Mapping[str, float]) -> float | None:
    """w_f·|forget − oracle| + w_r·max(0, oracle − retain) + w_g·max(0, −general change)."""
    forget = s.get("forget_distance")
    if forget is None:  # no oracle: how far above guessing the forget set still is
        acc, chance = s.get("forget"), s.get("chance")
        if acc is None or chance is None:
            return None
        forget = max(0.0, acc - chance)
    general = s.get("general_change") or 0.0  # no general set: nothing measured to lose
    return (
        w["forget"] * abs(forget)
        + w["retain"] * _retain_lost(s)
        + w["general"] * max(0.0, -general)
    )


def _retain_lost(s: Standing) -> float:
    """Retain accuracy the oracle keeps and the method lost; without an oracle, what it lost
    against the model before (a missing oracle must not make retain free)."""
    distance = s.get("retain_distance")
    if distance is not None:
        return max(0.0, -distance)
    before, after = s.get("retain_before"), s.get("retain")
    return max(0.0, before - after) if before is not None and after is not None else 0.0


def _privacy(s: Standing, w: Mapping[str, float]) -> float | None:
    """w_p·|PrivLeak| + w_r·max(0, oracle − retain)."""
    leak = s.get("privleak")
    if leak is None:
        return None
    return w["privleak"] * abs(leak) + w["retain"] * _retain_lost(s)


def _matched(s: Standing, w: Mapping[str, float]) -> float | None:
    """At matched forgetting: w_r·(retain lost) + w_g·(general lost) where the path reached the
    target; never reached: w_f·(forget − target) + the same losses at the end of the budget."""
    step = s.get("matched_step")
    if step is None:
        return _oracle_gap(s, w)  # not evaluated along the request: the end-of-budget rule
    retain_before = s.get("retain_before")
    general_before = s.get("general_before")

    def lost(before: float | None, after: float | None) -> float:
        return max(0.0, before - after) if before is not None and after is not None else 0.0

    if step >= 0:
        retain, general = s.get("matched_retain"), s.get("matched_general")
        return w["retain"] * lost(retain_before, retain) + w["general"] * lost(
            general_before, general
        )
    forget, target = s.get("forget"), s.get("matched_target")
    short = max(0.0, forget - target) if forget is not None and target is not None else 0.0
    return (
        w["forget"] * short
        + w["retain"] * lost(retain_before, s.get("retain"))
        + w["general"] * lost(general_before, s.get("general"))
    )


MATCHED_RULE = register_rule(
    Rule(
        "matched",
        "at matched forgetting: where a method's path first brings its forget accuracy down to "
        "the target (the oracle's forget accuracy, else chance), score = {retain}·(retain "
        "accuracy lost against the model before) + {general}·(general capability lost, when "
        "measured along the request); a method that never reaches the target scores "
        "{forget}·(its forget accuracy above the target) + the same losses at the end of its "
        "budget; in accuracy points, averaged over the scenarios; lower is better. Without "
        "evaluation along the requests (train.eval_every) the rule is oracle_gap's.",
        _matched,
        {"forget": 1.0, "retain": 1.0, "general": 1.0},
    )
)
ORACLE_GAP = register_rule(
    Rule(
        "oracle_gap",
        "score = {forget}·|forget accuracy − the oracle's| + {retain}·(retain accuracy the oracle "
        "keeps and the method lost) + {general}·(general capability lost against the model "
        "before), in accuracy points, averaged over the scenarios; lower is better (0: the "
        "oracle's forgetting at no cost). Without an oracle the forget term is the forget "
        "accuracy above chance and the retain term the retain accuracy lost against the model "
        "before.",
        _oracle_gap,
        {"forget": 1.0, "retain": 1.0, "general": 1.0},
    )
)
PRIVACY = register_rule(
    Rule(
        "privacy",
        "score = {privleak}·|PrivLeak (LOSS)| + {retain}·(retain accuracy the oracle keeps and "
        "the method lost), averaged over the scenarios; lower is better.",
        _privacy,
        {"privleak": 1.0, "retain": 1.0},
        privacy=True,
    )
)
