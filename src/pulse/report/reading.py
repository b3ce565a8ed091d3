"""A short reading of the results in plain sentences, every claim computed from the tables.

Comparisons ("the most", "per point") are only made between at least two rows that have the
numbers; a row that diverged or failed takes part in none of them. A comparison of two single
values whose 95 % intervals overlap says so: the difference may be the questions' noise.
"""

from __future__ import annotations

from collections.abc import Sequence

from pulse.report.tables import Column, Table, TableRow

FORGET_KEYS = ("forget_multimodal", "forget_text")
RETAIN_KEYS = ("retain_multimodal", "retain_text")
# Below this loss (in fractions) general capability counts as kept: ratios over a near-zero
# loss would crown whichever method happened to lose 0.1 point.
KEPT = 0.005
TIE = 1e-9  # values closer than this are the same number
NEAR_CHANCE = 0.10  # a forget accuracy this close to guessing means nothing was known


def build_reading(tables: Sequence[Table]) -> list[str]:
    sentences: list[str] = []
    for table in tables:
        sentences += _near_chance(table)
        if table.kind == "sequential":
            sentences += _sequential(table)
        elif table.kind == "pebench":
            sentences += _pebench(table)
        elif table.kind == "scope":
            sentences += _scope(table)
        else:
            sentences += _forgetting(table)
        sentences += _modality(table)
        sentences += _partial_seeds(table)
    sentences += _knowledge_source(tables)
    return sentences


def _partial_seeds(table: Table) -> list[str]:
    """Rows that pool fewer training seeds than others of the table (some of theirs did not
    finish): their mean and interval rest on fewer runs."""
    seeds = {
        row.label: max(cell.seeds for cell in row.cells.values())
        for row in _ok(table.method_rows)
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


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def _pts(value: float) -> str:
    return f"{value * 100:.1f} points"


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _ok(rows: Sequence[TableRow]) -> list[TableRow]:
    return [r for r in rows if r.status == "ok"]


def _leader(scores: dict[str, float], lowest: bool = False) -> str | None:
    """The one label ahead of every other; ``None`` on a tie for first or with fewer than two:
    "the most" is only said of a row that stands out."""
    if len(scores) < 2:
        return None
    ranked = sorted(scores, key=scores.__getitem__, reverse=not lowest)
    first, second = scores[ranked[0]], scores[ranked[1]]
    return ranked[0] if abs(first - second) > TIE else None


def _overlap_note(a: TableRow, b: TableRow, key: str, name: str | None = None) -> str:
    """A clause when the 95 % intervals of ``a`` and ``b`` in column ``key`` overlap (empty
    when they do not, or when either has none); ``name`` names ``b`` in it."""
    first, second = a.interval(key), b.interval(key)
    if first is None or second is None or first[0] > second[1] or second[0] > first[1]:
        return ""
    if name is None:
        return "their 95 % intervals overlap"
    return f"its 95 % interval overlaps {name}'s"


def _gap_note(table: Table, method: str, split: str, modality: str) -> str:
    """The paired 95 % interval of the sequential-vs-batch gap, when the run measured it:
    tighter than two overlapping intervals, since both states answer the same questions."""
    gap = table.batch_gaps.get((method, split, modality))
    if gap is None or gap.interval is None:
        return ""
    return _paired_clause("the gap", gap.interval)


def _paired_clause(what: str, interval: tuple[float, float]) -> str:
    """``paired 95 % interval of <what> -6.0 to +2.0 points: within noise`` (or "a measured
    difference" when it leaves zero)."""
    low, high = interval
    verdict = "within noise" if low <= 0 <= high else "a measured difference"
    return f"paired 95 % interval of {what} {_span(low, high)} points: {verdict}"


def _span(low: float, high: float) -> str:
    """``-6.0 to +2.0``: an interval of fractions, in signed points."""
    return f"{low * 100:+.1f} to {high * 100:+.1f}"


def _also(clause: str, before: str, after: str = "") -> str:
    """``clause`` between ``before`` and ``after``, or nothing when it is empty."""
    return f"{before}{clause}{after}" if clause else ""


def _lead_note(
    table: Table, values: dict[str, float], rows: dict[str, TableRow], key: str, lowest: bool
) -> str:
    """``; <clause>`` on the leader of ``values`` against the runner-up: the paired interval
    of their difference when the run compared them, else whether their intervals overlap."""
    leader, second = sorted(values, key=values.__getitem__, reverse=not lowest)[:2]
    column = table.column(key)
    paired = table.contrast(rows[leader], rows[second], column) if column else None
    if paired is not None and paired.interval is not None:
        return "; " + _paired_clause(f"the difference to {second}", paired.interval)
    return _also(_overlap_note(rows[leader], rows[second], key, second), "; ")


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
        f"In {table.scenario}, the model answers the forget set at {_pct(accuracy)} before "
        f"unlearning, within {_pts(NEAR_CHANCE)} of guessing ({_pct(table.chance)}): it knew "
        "little to forget, so its forget-accuracy changes say little about unlearning."
    ]


def _forgetting(table: Table) -> list[str]:
    rows = _ok(table.headline_rows)
    drops = {r.label: d for r in rows if (d := _forget_drop(table, r)) is not None}
    if not drops:
        return []
    if max(drops.values()) <= 0:
        return [f"In {table.scenario}, no method lowers forget accuracy."]
    out = []
    by_label = {r.label: r for r in rows}
    if len(drops) == 1:
        ((label, drop),) = drops.items()
        out.append(
            f"In {table.scenario}, {label} lowers forget accuracy by {_pts(drop)} on average "
            "over multimodal and text-only questions."
        )
    elif forgotten := _most_forgotten(table, by_label):
        leader, drop, note = forgotten
        out.append(
            f"In {table.scenario}, {leader} forgets the most: forget accuracy falls by "
            f"{_pts(drop)} on average over multimodal and text-only questions{note}."
        )
    out += _per_point(table, rows, drops)
    kept = _most_retained(table, by_label)
    if kept:
        label, value, note = kept
        out.append(
            f"{label} keeps the most retain accuracy in {table.scenario}: "
            f"{_pct(value)} on average{note}."
        )
    return out


def _most_forgotten(table: Table, rows: dict[str, TableRow]) -> tuple[str, float, str] | None:
    """The name among ``rows`` whose forget accuracy fell the most (mean over modalities), the
    drop, and how it stands against the runner-up; ``None`` without a clear leader."""
    drops = {name: d for name, r in rows.items() if (d := _forget_drop(table, r)) is not None}
    leader = _leader(drops)
    if leader is None:
        return None
    return leader, drops[leader], _runner_up_note(table, drops, rows, FORGET_KEYS)


def _most_retained(table: Table, rows: dict[str, TableRow]) -> tuple[str, float, str] | None:
    """The same for the highest retain accuracy."""
    kept = {
        name: v
        for name, r in rows.items()
        if (v := _mean([r.value(key) for key in RETAIN_KEYS])) is not None
    }
    leader = _leader(kept)
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
    if all(_overlap_note(first, other, key) for key in keys):
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
            f"In {table.scenario}, {label} forgets {_pts(drops[label])} while keeping its general "
            f"capability (change {-costs[label] * 100:+.1f} points{bounds})."
        ]
    ratios = {label: drops[label] / loss for label, loss in candidates.items()}
    best = _leader(ratios)
    if best is None:
        return []
    runner_up = sorted(ratios, key=ratios.__getitem__, reverse=True)[1]
    return [
        f"In {table.scenario}, {best} forgets the most per point of general capability lost: "
        f"{ratios[best]:.2f} points of forget accuracy per point ({_pts(drops[best])} forgotten, "
        f"{_pts(costs[best])} lost), against {ratios[runner_up]:.2f} for {runner_up}."
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
        for r in _ok(table.headline_rows)
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
        f"{further} of {len(pairs)} {noun}; the widest gap is {label}: {_pts(mm)} multimodal "
        f"against {_pts(text)} text-only."
    ]


def _sequential(table: Table) -> list[str]:
    out = []
    for method in dict.fromkeys(r.method for r in table.method_rows):
        rows = [r for r in table.method_rows if r.method == method]
        chain = sorted((r for r in rows if r.requests > 1), key=lambda r: r.request)
        batch = next((r for r in rows if r.requests <= 1 and r.status == "ok"), None)
        stopped = next((r for r in chain if r.status != "ok"), None)
        if stopped:
            out.append(
                f"In {table.scenario}, {method} has no result after request {stopped.request} of "
                f"{stopped.requests} ({stopped.status}), so its sequential run is incomplete."
            )
            continue
        if not chain or not batch:
            continue
        last = chain[-1]
        general = (last.value("general"), batch.value("general"))
        if None not in general:
            note = _gap_note(table, method, "general", "all") or _overlap_note(
                last, batch, "general"
            )
            out.append(
                f"After {last.requests} sequential requests, {method} keeps "
                f"{_pct(general[0])} general capability against {_pct(general[1])} when the "
                f"same data is unlearned in one batch ({(general[0] - general[1]) * 100:+.1f} "
                f"points{_also(note, '; ')})."
            )
        for column in table.columns:
            if column.split != "forget":
                continue
            forget = (last.value(column.key), batch.value(column.key))
            if None not in forget:
                note = _gap_note(table, method, "forget", column.modality or "all")
                note = note or _overlap_note(last, batch, column.key)
                out.append(
                    f"Its {column.label} forget accuracy ends at {_pct(forget[0])} sequentially "
                    f"against {_pct(forget[1])} in one batch{_also(note, ' (', ')')}."
                )
                break
    return out + _chain_ends(table)


def _chain_ends(table: Table) -> list[str]:
    """Which method ends its chain of requests having forgotten the most, and which keeps the
    most retain accuracy, each against the runner-up (by their paired contrast when the run
    measured it)."""
    ends = {
        r.method: r for r in _ok(table.method_rows) if r.requests > 1 and r.request == r.requests
    }
    if len(ends) < 2:
        return []
    k = next(iter(ends.values())).requests
    out = []
    if forgotten := _most_forgotten(table, ends):
        leader, drop, note = forgotten
        out.append(
            f"After {k} sequential requests, {leader} has forgotten the most: forget accuracy "
            f"fell by {_pts(drop)} on average over both modalities{note}."
        )
    if kept := _most_retained(table, ends):
        leader, value, note = kept
        out.append(
            f"After {k} sequential requests, {leader} keeps the most retain accuracy: "
            f"{_pct(value)} on average{note}."
        )
    return out


def _scope(table: Table) -> list[str]:
    out = []
    for method in dict.fromkeys(r.method for r in table.method_rows):
        rows = _ok([r for r in table.headline_rows if r.method == method])
        by_setting = {r.setting: r for r in rows}
        forget = {r.setting: v for r in rows if (v := r.value("forget_multimodal")) is not None}
        general = {r.setting: v for r in rows if (v := r.value("general")) is not None}
        parts = []
        if scope := _leader(forget, lowest=True):
            parts.append(
                f"updating {scope} forgets most (multimodal {_pct(forget[scope])}"
                + _lead_note(table, forget, by_setting, "forget_multimodal", lowest=True)
                + ")"
            )
        if scope := _leader(general):
            parts.append(
                f"{scope} keeps the most general capability ({_pct(general[scope])}"
                + _lead_note(table, general, by_setting, "general", lowest=False)
                + ")"
            )
        if parts:
            out.append(f"For {method} in {table.scenario}, " + "; ".join(parts) + ".")
    return out


def _pebench(table: Table) -> list[str]:
    out = []
    for target in dict.fromkeys(r.setting for r in table.method_rows):
        rows = _ok([r for r in table.method_rows if r.setting == target])
        scored = [r for r in rows if r.value("efficacy") is not None]
        if not scored:
            continue
        leader = _leader({r.label: r.value("efficacy") for r in scored})
        if len(scored) > 1 and leader is None:
            continue
        best = next(r for r in scored if r.label == leader) if leader else scored[0]
        extras = [
            f"{key} {_pct(v)}" for key in ("retain", "scope") if (v := best.value(key)) is not None
        ]
        lead = "reaches the highest efficacy" if leader else "reaches efficacy"
        out.append(
            f"Forgetting the {target} target in {table.scenario}, {best.method} {lead} "
            f"({_pct(best.value('efficacy'))})" + (f" with {', '.join(extras)}." if extras else ".")
        )
    return out


def _knowledge_source(tables: Sequence[Table]) -> list[str]:
    """Fine-tuned against pre-trained knowledge: general capability lost, per method."""
    by_kind = {}
    for table in tables:
        if table.kind in ("finetuned", "pretrained") and table.before:
            by_kind.setdefault(table.kind, table)
    if len(by_kind) < 2:
        return []
    finetuned, pretrained = by_kind["finetuned"], by_kind["pretrained"]
    losses = {
        kind: {r.label: v for r in _ok(t.headline_rows) if (v := t.drop(r, "general")) is not None}
        for kind, t in by_kind.items()
    }
    common = [label for label in losses["finetuned"] if label in losses["pretrained"]]
    if not common:
        return []
    costlier = [
        label for label in common if losses["pretrained"][label] > losses["finetuned"][label]
    ]
    details = "; ".join(
        f"{label} {_pts(losses['finetuned'][label])} ({finetuned.scenario}) against "
        f"{_pts(losses['pretrained'][label])} ({pretrained.scenario})"
        for label in common
    )
    return [
        f"Unlearning pre-trained knowledge costs more general capability than fine-tuned "
        f"knowledge for {len(costlier)} of {len(common)} methods: {details}."
    ]
