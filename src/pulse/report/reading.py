"""A short reading of the results in plain sentences, every claim computed from the tables.

Every table gets the sentences of its scenario (:attr:`ScenarioType.reading
<pulse.protocol.registry.ScenarioType.reading>`; by default :func:`forgetting`: which method
forgets most, at what cost), and this module's helpers are theirs to use.

The reading opens with a verdict per table: where the scenario has an oracle (a model trained
without the forget set), each method's final state against it in a few words ("forgets to the
oracle's level", "over-forgets", "not yet forgotten", "indistinguishable from the oracle by KS
at 0.05"), else why there is none. Every state is then placed against it in full
(:mod:`pulse.report.against_oracle`), and a row ranked as forgetting the most (or the most per
point of general capability) while below the oracle's forget accuracy is said to over-forget,
with how its retain accuracy stands against the oracle's. Comparisons ("the most", "per
point") are only made between at least two rows that have the numbers; a row that diverged or
failed takes part in none of them. A comparison of two single values whose 95 % intervals
overlap says so: the difference may be the questions' noise.
"""

from __future__ import annotations

from collections.abc import Sequence

from pulse.protocol.registry import get_scenario, scenario_types
from pulse.report.against_oracle import below_oracle_note, oracle_sentences, verdict
from pulse.report.tables import Column, Table, TableRow

FORGET_KEYS = ("forget_multimodal", "forget_text")
RETAIN_KEYS = ("retain_multimodal", "retain_text")
# Below this loss (in fractions) general capability counts as kept: ratios over a near-zero
# loss would crown whichever method happened to lose 0.1 point.
KEPT = 0.005
TIE = 1e-9  # values closer than this are the same number
NEAR_CHANCE = 0.10  # a forget accuracy this close to guessing means nothing was known


def build_reading(tables: Sequence[Table]) -> list[str]:
    """A verdict per table against its oracle (or why it has none), then each table's
    sentences (its scenario's own, or which method forgets most at what cost), then what the
    scenarios say across tables."""
    sentences: list[str] = []
    for table in tables:
        sentences += verdict(table, ok_rows(table.headline_rows))
    for table in tables:
        scenario = get_scenario(table.kind)
        own = scenario.reading if scenario and scenario.reading else forgetting
        sentences += _near_chance(table)
        sentences += own(table)
        sentences += oracle_sentences(table, ok_rows(table.headline_rows))
        sentences += _modality(table)
        sentences += _partial_seeds(table)
    for scenario in scenario_types():
        if scenario.reading_across:
            sentences += scenario.reading_across(tables)
    return sentences


def _partial_seeds(table: Table) -> list[str]:
    """Rows that pool fewer training seeds than others of the table (some of theirs did not
    finish): their mean and interval rest on fewer runs."""
    seeds = {
        row.label: max(cell.seeds for cell in row.cells.values())
        for row in ok_rows(table.method_rows)
        if row.cells
    }
    most = max(seeds.values(), default=1)
    short = [f"{label} ({count})" for label, count in seeds.items() if count < most]
    if most < 2 or not short:
        return []
    return [
        f"In {table.scenario}, fewer than {most} training seeds finished for "
        f"{', '.join(short)}: those values pool only the seeds that did."
    ]


def pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def pts(value: float) -> str:
    return f"{value * 100:.1f} points"


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def ok_rows(rows: Sequence[TableRow]) -> list[TableRow]:
    return [r for r in rows if r.status == "ok"]


def clear_leader(scores: dict[str, float], lowest: bool = False) -> str | None:
    """The one label ahead of every other; ``None`` on a tie for first or with fewer than two:
    "the most" is only said of a row that stands out."""
    if len(scores) < 2:
        return None
    ranked = sorted(scores, key=scores.__getitem__, reverse=not lowest)
    first, second = scores[ranked[0]], scores[ranked[1]]
    return ranked[0] if abs(first - second) > TIE else None


def overlap_note(a: TableRow, b: TableRow, key: str, name: str | None = None) -> str:
    """A clause when the 95 % intervals of ``a`` and ``b`` in column ``key`` overlap (empty
    when they do not, or when either has none); ``name`` names ``b`` in it."""
    first, second = a.interval(key), b.interval(key)
    if first is None or second is None or first[0] > second[1] or second[0] > first[1]:
        return ""
    if name is None:
        return "their 95 % intervals overlap"
    return f"its 95 % interval overlaps {name}'s"


def gap_note(table: Table, method: str, split: str, modality: str) -> str:
    """The paired 95 % interval of the sequential-vs-batch gap, when the run measured it:
    tighter than two overlapping intervals, since both states answer the same questions."""
    gap = table.batch_gaps.get((method, split, modality))
    if gap is None or gap.interval is None:
        return ""
    return paired_clause("the gap", gap.interval)


def paired_clause(what: str, interval: tuple[float, float]) -> str:
    """``paired 95 % interval of <what> -6.0 to +2.0 points: within noise`` (or "a measured
    difference" when it leaves zero)."""
    low, high = interval
    verdict = "within noise" if low <= 0 <= high else "a measured difference"
    return f"paired 95 % interval of {what} {_span(low, high)} points: {verdict}"


def _span(low: float, high: float) -> str:
    """``-6.0 to +2.0``: an interval of fractions, in signed points."""
    return f"{low * 100:+.1f} to {high * 100:+.1f}"


def also(clause: str, before: str, after: str = "") -> str:
    """``clause`` between ``before`` and ``after``, or nothing when it is empty."""
    return f"{before}{clause}{after}" if clause else ""


def lead_note(
    table: Table, values: dict[str, float], rows: dict[str, TableRow], key: str, lowest: bool
) -> str:
    """``; <clause>`` on the leader of ``values`` against the runner-up: the paired interval
    of their difference when the run compared them, else whether their intervals overlap."""
    leader, second = sorted(values, key=values.__getitem__, reverse=not lowest)[:2]
    column = table.column(key)
    paired = table.contrast(rows[leader], rows[second], column) if column else None
    if paired is not None and paired.interval is not None:
        return "; " + paired_clause(f"the difference to {second}", paired.interval)
    return also(overlap_note(rows[leader], rows[second], key, second), "; ")


def _forget_drop(table: Table, row: TableRow) -> float | None:
    return _mean([table.drop(row, key) for key in FORGET_KEYS])


def _near_chance(table: Table) -> list[str]:
    """A forget set the model barely knew before unlearning has nothing to lose: say so before
    any claim about forgetting is read into its rows."""
    before = table.before
    if before is None or table.chance is None:
        return []
    accuracy = _mean([before.value(key) for key in FORGET_KEYS])
    if accuracy is None or accuracy - table.chance >= NEAR_CHANCE:
        return []
    return [
        f"In {table.scenario}, the model answers the forget set at {pct(accuracy)} before "
        f"unlearning, within {pts(NEAR_CHANCE)} of guessing ({pct(table.chance)}): it knew "
        "little to forget, so its forget-accuracy changes say little about unlearning."
    ]


def forgetting(table: Table) -> list[str]:
    rows = ok_rows(table.headline_rows)
    drops = {r.label: d for r in rows if (d := _forget_drop(table, r)) is not None}
    if not drops:
        return []
    if max(drops.values()) <= 0:
        return [f"In {table.scenario}, no method lowers forget accuracy."]
    out = []
    by_label = {r.label: r for r in rows}
    if len(drops) == 1:
        ((label, drop),) = drops.items()
        note = below_oracle_note(table, by_label[label])
        out.append(
            f"In {table.scenario}, {label} lowers forget accuracy by {pts(drop)} on average "
            f"over multimodal and text-only questions{note}."
        )
    elif forgotten := most_forgotten(table, by_label):
        leader, drop, note = forgotten
        out.append(
            f"In {table.scenario}, {leader} forgets the most: forget accuracy falls by "
            f"{pts(drop)} on average over multimodal and text-only questions{note}."
        )
    out += _per_point(table, rows, drops)
    kept = most_retained(table, by_label)
    if kept:
        label, value, note = kept
        out.append(
            f"{label} keeps the most retain accuracy in {table.scenario}: "
            f"{pct(value)} on average{note}."
        )
    return out


def most_forgotten(table: Table, rows: dict[str, TableRow]) -> tuple[str, float, str] | None:
    """The name among ``rows`` whose forget accuracy fell the most (mean over modalities), the
    drop, and how it stands against the runner-up; ``None`` without a clear leader."""
    drops = {name: d for name, r in rows.items() if (d := _forget_drop(table, r)) is not None}
    leader = clear_leader(drops)
    if leader is None:
        return None
    note = _runner_up_note(table, drops, rows, FORGET_KEYS) + below_oracle_note(table, rows[leader])
    return leader, drops[leader], note


def most_retained(table: Table, rows: dict[str, TableRow]) -> tuple[str, float, str] | None:
    """The same for the highest retain accuracy."""
    kept = {
        name: v
        for name, r in rows.items()
        if (v := _mean([r.value(key) for key in RETAIN_KEYS])) is not None
    }
    leader = clear_leader(kept)
    if leader is None:
        return None
    return leader, kept[leader], _runner_up_note(table, kept, rows, RETAIN_KEYS)


def _runner_up_note(
    table: Table, scores: dict[str, float], rows: dict[str, TableRow], keys: Sequence[str]
) -> str:
    """How the leader of ``scores`` (highest first) stands against the runner-up X in the
    columns ``keys`` (one per modality). With the run's paired contrasts (the same people and
    questions in both states): whether their difference's interval leaves zero, in the
    leader's favour, in every modality. Without: `` (its 95 % intervals overlap X's in both
    modalities)`` when the two marginal intervals overlap in every column (the ranking may be
    the questions' noise)."""
    leader, second = sorted(scores, key=scores.__getitem__, reverse=True)[:2]
    first, other = rows[leader], rows[second]
    columns = [c for key in keys if (c := table.column(key)) is not None]
    paired = [table.contrast(first, other, c) for c in columns]
    if columns and all(p is not None and p.interval is not None for p in paired):
        unclear = [
            c.label
            for c, p in zip(columns, paired, strict=True)
            if not _favours(p.interval, c.lower_is_better)  # type: ignore[union-attr, arg-type]
        ]
        if not unclear:
            return (
                f" (a measured difference: the paired 95 % interval of its difference to "
                f"{second} leaves zero in {_modalities(columns)})"
            )
        return (
            f" (within noise of {second}: the paired 95 % interval of their difference holds "
            f"zero in {_modalities(columns) if len(unclear) == len(columns) else unclear[0]})"
        )
    if all(overlap_note(first, other, key) for key in keys):
        return f" (its 95 % intervals overlap {second}'s in both modalities)"
    return ""


def _favours(interval: tuple[float, float], lower_is_better: bool) -> bool:
    """Whether a difference (leader minus runner-up) lies wholly on the leader's side."""
    return interval[1] < 0 if lower_is_better else interval[0] > 0


def _modalities(columns: Sequence[Column]) -> str:
    return "both modalities" if len(columns) == 2 else " and ".join(c.label for c in columns)


def _per_point(table: Table, rows: Sequence[TableRow], drops: dict[str, float]) -> list[str]:
    """Which method forgets most per point of general capability lost."""
    costs = {r.label: loss for r in rows if (loss := table.drop(r, "general")) is not None}
    candidates = {label: costs[label] for label in drops if label in costs and drops[label] > 0}
    if len(candidates) < 2:
        return []
    by_label = {r.label: r for r in rows}
    free = [label for label in candidates if _kept(by_label[label], costs[label])]
    if free:
        label = max(free, key=drops.__getitem__)
        spread = by_label[label].delta_interval("general")
        bounds = f"; 95 % interval {_span(*spread)}" if spread else ""
        return [
            f"In {table.scenario}, {label} forgets {pts(drops[label])} while keeping its general "
            f"capability (change {-costs[label] * 100:+.1f} points{bounds}"
            f"{below_oracle_note(table, by_label[label], brief=True)})."
        ]
    ratios = {label: drops[label] / loss for label, loss in candidates.items()}
    best = clear_leader(ratios)
    if best is None:
        return []
    runner_up = sorted(ratios, key=ratios.__getitem__, reverse=True)[1]
    return [
        f"In {table.scenario}, {best} forgets the most per point of general capability lost: "
        f"{ratios[best]:.2f} points of forget accuracy per point ({pts(drops[best])} forgotten, "
        f"{pts(costs[best])} lost), against {ratios[runner_up]:.2f} for {runner_up}"
        f"{below_oracle_note(table, by_label[best], brief=True)}."
    ]


def _kept(row: TableRow, loss: float) -> bool:
    """General capability counts as kept when the loss is below ``KEPT``, or when the paired
    95 % interval of its change reaches zero: a ratio over a loss the questions cannot tell
    from none would crown noise."""
    spread = row.delta_interval("general")
    return loss < KEPT or (spread is not None and spread[1] >= 0)


def _modality(table: Table) -> list[str]:
    pairs = [
        (r.label, mm, text)
        for r in ok_rows(table.headline_rows)
        if (mm := table.drop(r, FORGET_KEYS[0])) is not None
        and (text := table.drop(r, FORGET_KEYS[1])) is not None
    ]
    if not pairs:
        return []
    label, mm, text = max(pairs, key=lambda p: abs(p[1] - p[2]))
    if abs(mm - text) <= TIE:
        return [
            f"In {table.scenario}, forget accuracy changes by the same amount in both modalities."
        ]
    further = sum(mm > text + TIE for _, mm, text in pairs)
    noun = "rows" if any(r.variant for r in table.method_rows) else "methods"
    return [
        f"In {table.scenario}, multimodal forget accuracy falls further than text-only for "
        f"{further} of {len(pairs)} {noun}; the widest gap is {label}: {pts(mm)} multimodal "
        f"against {pts(text)} text-only."
    ]
