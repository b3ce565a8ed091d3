"""The privacy tables and their reading: membership inference per scenario.

Each scenario with membership-inference rows gets a table of its own: per score (LOSS, ZLib,
Min-K %, Min-K %++, reference), the AUC of forget pairs against holdout pairs and PrivLeak
against the oracle, each per modality. The reading names, by Min-K %++ (MUSE's attack), the
states that still leak (PrivLeak's interval above zero), those over-unlearned (below zero) and
those at the oracle's level; and says why a scenario has no such rows, or no PrivLeak.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from pulse.eval.membership import SCORES
from pulse.protocol.metrics.mia_auc import SCORE_LABELS
from pulse.protocol.results import ResultRow
from pulse.report.against_oracle import no_oracle_reason
from pulse.report.tables import Column, Table, TableRow, build_table, layout_of

HEADLINE = "min_k_pp"  # MUSE reports PrivLeak of the Min-K %++ attack
MODALITIES = (("multimodal", "multimodal"), ("text", "text-only"))
SUFFIX = "-privacy"


def privacy_columns() -> tuple[Column, ...]:
    """Per score: AUC and PrivLeak, each multimodal and text-only, on the forget split."""
    return tuple(
        Column(
            f"{metric}_{score}_{modality}",
            SCORE_LABELS[score],
            f"{what} {label}",
            "forget",
            f"{metric}_{score}",
            modality,
            ranked=False,
        )
        for score in SCORES
        for metric, what in (("mia_auc", "AUC"), ("privleak", "PrivLeak"))
        for modality, label in MODALITIES
    )


def privacy_tables(rows: Sequence[ResultRow], methods: Sequence[str]) -> list[Table]:
    """A privacy table per scenario that measured membership inference, in the order of
    ``rows``' scenarios."""
    by_scenario: dict[str, list[ResultRow]] = {}
    for row in rows:
        by_scenario.setdefault(row.scenario, []).append(row)
    tables = []
    for scenario, own in by_scenario.items():
        if not any(r.metric.startswith("mia_auc_") for r in own):
            continue
        title = f"Privacy: membership inference ({scenario})"
        layout = replace(layout_of(own[0].kind), title=title, columns=privacy_columns())
        table = build_table(scenario, own, methods, layout)
        tables.append(replace(table, scenario=scenario + SUFFIX, title=title))
    return tables


def scenario_of(table: Table) -> str:
    return table.scenario.removesuffix(SUFFIX)


def _key(metric: str, modality: str) -> str:
    return f"{metric}_{HEADLINE}_{modality}"


def _leak_text(row: TableRow) -> str:
    parts = []
    for modality, label in MODALITIES:
        value = row.value(_key("privleak", modality))
        if value is not None:
            parts.append(f"{label} {value * 100:+.1f} %")
    return ", ".join(parts)


def standing(row: TableRow) -> str | None:
    """``leaks`` / ``over-unlearned`` / ``at the oracle's level`` from PrivLeak's interval in
    every modality; ``mixed`` otherwise; None without PrivLeak."""
    intervals = []
    for modality, _ in MODALITIES:
        if row.value(_key("privleak", modality)) is None:
            return None
        intervals.append(row.interval(_key("privleak", modality)))
    if any(i is None for i in intervals):
        return "mixed"
    if all(low > 0 for low, _ in intervals):
        return "leaks"
    if all(high < 0 for _, high in intervals):
        return "over-unlearned"
    if all(low <= 0 <= high for low, high in intervals):
        return "at the oracle's level"
    return "mixed"


VERDICTS = {
    "leaks": "still leak membership (PrivLeak's 95 % interval above zero in every modality)",
    "over-unlearned": (
        "are over-unlearned (below zero in every modality: their forget pairs look less seen "
        "than a never-trained model's)"
    ),
    "at the oracle's level": (
        "are at the oracle's level (the interval holds zero in every modality)"
    ),
    "mixed": "differ between modalities or have no interval",
}


def _rows(table: Table) -> list[TableRow]:
    return [r for r in (table.before, *table.headline_rows) if r is not None and r.status == "ok"]


def privacy_sentences(table: Table) -> list[str]:
    scenario = scenario_of(table)
    label = SCORE_LABELS[HEADLINE]
    oracle = table.oracle
    if oracle is None:
        reason = no_oracle_reason(table) or "the run has none"
        return [
            f"In {scenario}, membership inference has AUC rows but no PrivLeak: there is no "
            f"oracle ({reason})."
        ]
    levels = [
        f"{name} {v * 100:.1f}"
        for modality, name in MODALITIES
        if (v := oracle.value(_key("mia_auc", modality))) is not None
    ]
    out = []
    if levels:
        out.append(
            f"In {scenario}, the oracle's {label} membership AUC (forget pairs against holdout "
            f"pairs, 50 = chance) is {', '.join(levels)}: the level exact unlearning leaves."
        )
    grouped: dict[str, list[str]] = {}
    for row in _rows(table):
        verdict = standing(row)
        if verdict is not None:
            grouped.setdefault(verdict, []).append(f"{row.label} ({_leak_text(row)})")
    for verdict, text in VERDICTS.items():
        if grouped.get(verdict):
            out.append(f"By {label} PrivLeak in {scenario}, {'; '.join(grouped[verdict])} {text}.")
    return out


def _holdout_key(kind: str) -> str:
    return "privacy.holdout_celebrities" if kind == "pretrained" else "privacy.holdout"


def missing_reason(kind: str, config: Mapping[str, Any] | None) -> str:
    """Why a scenario of ``kind`` has no membership-inference rows, from the run's config."""
    privacy = (config or {}).get("privacy") or {}
    models = (config or {}).get("models") or {}
    if privacy.get("enabled") is False:
        return "privacy is off (privacy.enabled)"
    key = _holdout_key(kind)
    if models.get("world") is None and not privacy.get(key.split(".")[1]):
        return (
            f"the run names no holdout people ({key}: people the model never trained on, e.g. "
            "those left out with pulse finetune --exclude)"
        )
    return "the run did not measure it (a run from before membership inference, or no holdout)"


def privacy_reading(
    tables: Sequence[Table], privacy: Sequence[Table], config: Mapping[str, Any] | None
) -> list[str]:
    """The privacy tables' sentences, and why a table of forget accuracy has none."""
    measured = {scenario_of(t) for t in privacy}
    out = []
    for table in tables:
        if table.has("forget_multimodal") and table.scenario not in measured:
            out.append(
                f"In {table.scenario} there are no membership-inference rows: "
                f"{missing_reason(table.kind, config)}."
            )
    for table in privacy:
        out += privacy_sentences(table)
    return out
