"""The reading's sentences about the oracle: where each state's forgetting stands against a
model that never learned the forget set, by its accuracy (the paired distance) and by the
distribution of its truth ratios (forget quality, KS at 0.05).

A state below the oracle's forget accuracy has not "forgotten more" than exact unlearning
would: it *over-forgets* (it answers the forget people worse than a model that never met
them, typically by losing what it knows about everyone). The reading says so wherever it
ranks forgetting.
"""

from __future__ import annotations

from collections.abc import Sequence

from pulse.protocol.metrics.forget_quality import KS_LEVEL
from pulse.protocol.registry import get_scenario
from pulse.report.tables import Table, TableRow

FORGET_KEYS = ("forget_multimodal", "forget_text")
DISTANCE_KEYS = tuple(f"oracle_distance_{key}" for key in FORGET_KEYS)
QUALITY_KEYS = tuple(f"forget_quality_{key}" for key in FORGET_KEYS)


def _points(value: float) -> str:
    return f"{abs(value) * 100:.1f} points"


def _distances(table: Table, row: TableRow) -> list[tuple[float, tuple[float, float] | None]]:
    """Per modality: the row's forget accuracy minus the oracle's, and its paired interval."""
    oracle = table.oracle
    if oracle is None:
        return []
    out = []
    for key, distance in zip(FORGET_KEYS, DISTANCE_KEYS, strict=True):
        value, reference = row.value(key), oracle.value(key)
        if value is not None and reference is not None:
            out.append((value - reference, row.interval(distance)))
    return out


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def standing(table: Table, row: TableRow) -> str | None:
    """``forgets to the oracle's level`` / ``over-forgets`` / ``has not yet forgotten`` (from
    the paired intervals of the distance in every modality), or the mean distance when the
    modalities disagree or have no interval; None without an oracle."""
    distances = _distances(table, row)
    if not distances:
        return None
    gap = _mean([d for d, _ in distances])
    intervals = [i for _, i in distances if i is not None]
    if len(intervals) == len(distances):
        if all(high < 0 for _, high in intervals):
            return (
                f"over-forgets: its forget accuracy is {_points(gap)} below the oracle's "
                "(the paired 95 % interval of the distance is below zero in every modality)"
            )
        if all(low > 0 for low, _ in intervals):
            return (
                f"has not yet forgotten: its forget accuracy is {_points(gap)} above the "
                "oracle's (the paired 95 % interval is above zero in every modality)"
            )
        if all(low <= 0 <= high for low, high in intervals):
            return (
                "forgets to the oracle's level (the paired 95 % interval of the distance holds "
                f"zero in every modality; mean distance {gap * 100:+.1f} points)"
            )
    side = "below" if gap < 0 else "above"
    return f"is {_points(gap)} {side} the oracle's forget accuracy on average over modalities"


def ks_clause(row: TableRow) -> str:
    """Whether the row's truth ratios on the forget set are distinguishable from the oracle's
    by KS at 0.05 in every modality (empty without forget-quality values)."""
    qualities = [q for key in QUALITY_KEYS if (q := row.value(key)) is not None]
    if len(qualities) < len(QUALITY_KEYS):
        return ""
    lowest = min(qualities)
    if lowest > KS_LEVEL:
        return (
            f"; indistinguishable from the oracle by KS at {KS_LEVEL} "
            f"(forget quality at least {lowest:.2f})"
        )
    return f"; told apart from the oracle by KS at {KS_LEVEL} (forget quality down to {lowest:.2g})"


def below_oracle_note(table: Table, row: TableRow) -> str:
    """A clause for a row ranked as forgetting the most whose forget accuracy is below the
    oracle's: it has gone past what exact unlearning reaches (empty otherwise)."""
    distances = _distances(table, row)
    if not distances or _mean([d for d, _ in distances]) >= 0:
        return ""
    return (
        f"; that is {_points(_mean([d for d, _ in distances]))} below the oracle, a model that "
        "never learned these people: it over-forgets rather than forgets better"
    )


def no_oracle_reason(table: Table) -> str | None:
    """Why the table has no oracle row, as its scenario declares it (None: nothing to say)."""
    scenario = get_scenario(table.kind)
    return scenario.no_oracle if scenario is not None else None


def oracle_sentences(table: Table, rows: Sequence[TableRow]) -> list[str]:
    """Where the before state and each of ``rows`` stand against the oracle; or, for a table
    that could have one, why it has none."""
    oracle = table.oracle
    if oracle is None:
        reason = no_oracle_reason(table)
        if reason is None:
            return []
        return [
            f"In {table.scenario} there is no oracle row, so no forget quality or distance to "
            f"the oracle: {reason}."
        ]
    out = []
    reference = [v for key in FORGET_KEYS if (v := oracle.value(key)) is not None]
    if len(reference) == len(FORGET_KEYS):
        out.append(
            f"In {table.scenario}, the oracle (trained without the forget set) answers the "
            f"forget set at {_mean(reference) * 100:.1f}% on average over modalities: the level "
            "exact unlearning reaches."
        )
    for row in [r for r in (table.before, *rows) if r is not None and r.status == "ok"]:
        verdict = standing(table, row)
        if verdict is not None:
            out.append(f"Against the oracle, {row.label} {verdict}{ks_clause(row)}.")
    return out
