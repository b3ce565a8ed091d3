"""The reading's sentences about the oracle: where each state's forgetting stands against a
model that never learned the forget set, by its accuracy (the paired distance) and by the
distribution of its truth ratios (forget quality, KS at 0.05).

A state below the oracle's forget accuracy has not "forgotten more" than exact unlearning
would: it *over-forgets*. Either it answers the forget people worse than a model that never met
them while the rest is kept like the oracle keeps it (a tell-tale of its own: such a model is
told apart from one that never learned them), or it lost what it knows about everyone. The
reading says which wherever it ranks forgetting, and opens with a short verdict per scenario
(:func:`verdict`).
"""

from __future__ import annotations

from collections.abc import Sequence

from pulse.protocol.metrics.forget_quality import KS_LEVEL
from pulse.protocol.registry import get_scenario
from pulse.report.tables import Table, TableRow

FORGET_KEYS = ("forget_multimodal", "forget_text")
RETAIN_KEYS = ("retain_multimodal", "retain_text")
DISTANCE_KEYS = tuple(f"oracle_distance_{key}" for key in FORGET_KEYS)
RETAIN_DISTANCE_KEYS = tuple(f"oracle_distance_{key}" for key in RETAIN_KEYS)
QUALITY_KEYS = tuple(f"forget_quality_{key}" for key in FORGET_KEYS)
BELOW, ABOVE, LEVEL = "below", "above", "level"

Distances = list[tuple[float, tuple[float, float] | None]]


def _points(value: float) -> str:
    return f"{abs(value) * 100:.1f} points"


def _distances(
    table: Table,
    row: TableRow,
    keys: Sequence[str] = FORGET_KEYS,
    distance_keys: Sequence[str] = DISTANCE_KEYS,
) -> Distances:
    """Per modality: the row's accuracy minus the oracle's (forget accuracy by default; the
    retain columns with ``RETAIN_KEYS``), and the paired interval of that distance."""
    oracle = table.oracle
    if oracle is None:
        return []
    out = []
    for key, distance in zip(keys, distance_keys, strict=True):
        value, reference = row.value(key), oracle.value(key)
        if value is not None and reference is not None:
            out.append((value - reference, row.interval(distance)))
    return out


def _retain_distances(table: Table, row: TableRow) -> Distances:
    return _distances(table, row, RETAIN_KEYS, RETAIN_DISTANCE_KEYS)


def side(distances: Distances) -> str | None:
    """``below`` / ``above`` the oracle when the paired interval of the distance leaves zero on
    that side in every modality, ``level`` when it holds zero in every modality; None when the
    modalities disagree or an interval is missing."""
    intervals = [i for _, i in distances if i is not None]
    if not distances or len(intervals) < len(distances):
        return None
    if all(high < 0 for _, high in intervals):
        return BELOW
    if all(low > 0 for low, _ in intervals):
        return ABOVE
    if all(low <= 0 <= high for low, high in intervals):
        return LEVEL
    return None


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
    where = side(distances)
    if where == BELOW:
        return (
            f"over-forgets: its forget accuracy is {_points(gap)} below the oracle's "
            "(the paired 95 % interval of the distance is below zero in every modality)"
        )
    if where == ABOVE:
        return (
            f"has not yet forgotten: its forget accuracy is {_points(gap)} above the "
            "oracle's (the paired 95 % interval is above zero in every modality)"
        )
    if where == LEVEL:
        return (
            "forgets to the oracle's level (the paired 95 % interval of the distance holds "
            f"zero in every modality; mean distance {gap * 100:+.1f} points)"
        )
    where = "below" if gap < 0 else "above"
    return f"is {_points(gap)} {where} the oracle's forget accuracy on average over modalities"


def _lowest_quality(row: TableRow) -> float | None:
    """The row's lowest forget quality over modalities (None unless every modality has one)."""
    qualities = [q for key in QUALITY_KEYS if (q := row.value(key)) is not None]
    return min(qualities) if len(qualities) == len(QUALITY_KEYS) else None


def ks_clause(row: TableRow) -> str:
    """Whether the row's truth ratios on the forget set are distinguishable from the oracle's
    by KS at 0.05 in every modality (empty without forget-quality values)."""
    lowest = _lowest_quality(row)
    if lowest is None:
        return ""
    if lowest > KS_LEVEL:
        return (
            f"; indistinguishable from the oracle by KS at {KS_LEVEL} "
            f"(forget quality at least {lowest:.2f})"
        )
    return f"; told apart from the oracle by KS at {KS_LEVEL} (forget quality down to {lowest:.2g})"


def _indistinguishable(row: TableRow) -> bool | None:
    """Whether KS at 0.05 cannot tell the row's truth ratios from the oracle's in any modality
    (None without forget-quality values in every modality)."""
    lowest = _lowest_quality(row)
    return None if lowest is None else lowest > KS_LEVEL


def retain_clause(table: Table, row: TableRow) -> str:
    """How the row's retain accuracy stands against the oracle's: ``alike`` (the paired
    interval holds zero in every modality), ``N points below`` or ``above`` (it leaves zero on
    that side in every modality), else the mean distance; empty without retain distances."""
    distances = _retain_distances(table, row)
    if not distances:
        return ""
    gap = _mean([d for d, _ in distances])
    where = side(distances)
    if where == LEVEL:
        return "its retain accuracy alike the oracle's (within the paired 95 % interval)"
    if where not in (BELOW, ABOVE):  # the modalities disagree: the mean distance's side
        where = BELOW if gap < 0 else ABOVE
    return f"its retain accuracy {_points(gap)} {where} the oracle's"


def below_oracle_note(table: Table, row: TableRow, brief: bool = False) -> str:
    """A clause for a row ranked as forgetting the most whose forget accuracy is below the
    oracle's: it has gone past what exact unlearning reaches, and how its retain accuracy
    stands against the oracle's says how (empty otherwise; ``brief``: only that it
    over-forgets, for a row the reading has already explained)."""
    distances = _distances(table, row)
    if not distances or (gap := _mean([d for d, _ in distances])) >= 0:
        return ""
    if brief:
        return f"; it over-forgets ({_points(gap)} below the oracle)"
    lead = (
        f"; that is {_points(gap)} below the oracle, a model that never learned these people: "
        "it over-forgets"
    )
    where = side(_retain_distances(table, row))
    clause = retain_clause(table, row)
    if where == LEVEL:
        return (
            f"{lead}, with {clause}: it answers these people worse than a model that never "
            "learned them (which itself gives the unlearning away) rather than forgets better"
        )
    if where == BELOW:
        return f"{lead}, and with {clause} too: it lost knowledge beyond the forget set"
    return f"{lead} rather than forgets better" + (f" ({clause})" if clause else "")


def short_verdict(table: Table, row: TableRow) -> str | None:
    """A few words on where ``row`` stands against the oracle, for the reading's opening."""
    distances = _distances(table, row)
    if not distances:
        return None
    gap = _mean([d for d, _ in distances])
    where = side(distances)
    ks = _indistinguishable(row)
    if where == LEVEL:
        words = "forgets to the oracle's level"
        if ks is True:
            words += f", indistinguishable from the oracle by KS at {KS_LEVEL}"
        elif ks is False:
            words += f", though told apart from it by KS at {KS_LEVEL}"
        return words
    if where == BELOW:
        retain = side(_retain_distances(table, row))
        extra = (
            ", retain alike the oracle's"
            if retain == LEVEL
            else ", retain below it too"
            if retain == BELOW
            else ""
        )
        return f"over-forgets ({_points(gap)} below the oracle{extra})"
    if where == ABOVE:
        return f"not yet forgotten ({_points(gap)} above the oracle)"
    words = f"{_points(gap)} {'below' if gap < 0 else 'above'} the oracle, not clearly"
    words += " either side in every modality"
    if ks is True:
        words += f"; indistinguishable from the oracle by KS at {KS_LEVEL}"
    return words


def verdict(table: Table, rows: Sequence[TableRow]) -> list[str]:
    """The reading's opening sentence for a table: each of ``rows`` (the methods' final
    states) against the oracle in a few words; or, without an oracle, why there is none."""
    if table.oracle is None:
        reason = no_oracle_reason(table)
        if reason is None:
            return []
        return [
            f"In {table.scenario} there is no oracle row, so no forget quality or distance to "
            f"the oracle: {reason}."
        ]
    parts = [
        f"{row.label} {words}"
        for row in rows
        if row.status == "ok" and (words := short_verdict(table, row)) is not None
    ]
    if not parts:
        return []
    return [f"Verdict in {table.scenario}, against the oracle: " + "; ".join(parts) + "."]


def no_oracle_reason(table: Table) -> str | None:
    """Why the table has no oracle row, as its scenario declares it (None: nothing to say)."""
    scenario = get_scenario(table.kind)
    return scenario.no_oracle if scenario is not None else None


def oracle_sentences(table: Table, rows: Sequence[TableRow]) -> list[str]:
    """Where the before state and each of ``rows`` stand against the oracle, in full (the
    opening :func:`verdict` says why a table has none)."""
    oracle = table.oracle
    if oracle is None:
        return []
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
