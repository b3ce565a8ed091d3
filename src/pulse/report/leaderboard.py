"""The leaderboard's table: each method's numbers on each ranked scenario (read from the run's
rows: pooled over training seeds, with their 95 % intervals), its score under the stated rule
and its rank; written as ``leaderboard.md``, ``leaderboard.csv`` and ``leaderboard.html`` in the
board's run directory, with the learning-rate sweep's table beside it."""

from __future__ import annotations

import csv
import html
import io
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulse.files import write_text
from pulse.protocol.results import ResultRow
from pulse.protocol.trajectory import MATCHED
from pulse.report.ranking import Estimate, Rule, Standing, describe, get_rule, weights_of
from pulse.report.rundir import load_run

LEADERBOARD = "leaderboard"
# column key -> (metric, split, modality) of the row it reads (all modalities pooled)
READS: dict[str, tuple[str, str]] = {
    "forget": ("accuracy", "forget"),
    "chance": ("chance", "forget"),
    "forget_distance": ("oracle_distance", "forget"),
    "forget_quality": ("forget_quality", "forget"),
    "retain": ("accuracy", "retain"),
    "retain_distance": ("oracle_distance", "retain"),
    "general": ("circular", "general"),
    "mia_auc": ("mia_auc_loss", "forget"),
    "privleak": ("privleak_loss", "forget"),
}
RECOVERY_SPLITS = ("held_back", "forget")  # relearning's held-back half; quantization: forget
# (key, header, kind): kind "pct" shows accuracy points, "raw" the value as it is
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("forget", "forget acc.", "pct"),
    ("forget_distance", "forget − oracle", "pct"),
    ("forget_quality", "forget quality", "raw"),
    ("retain", "retain acc.", "pct"),
    ("retain_distance", "retain − oracle", "pct"),
    ("general", "general", "pct"),
    ("general_change", "general change", "pct"),
    ("matched_target", "matched: forget target", "pct"),
    ("matched_step", "matched: at step", "step"),
    ("matched_seeds", "matched: seeds reaching it", "count"),
    ("matched_retain", "matched: retain", "pct"),
    ("matched_general", "matched: general", "pct"),
    ("mia_auc", "MIA AUC", "pct"),
    ("privleak", "PrivLeak", "pct"),
)


@dataclass(frozen=True)
class Entry:
    """One method on the leaderboard."""

    method: str
    lr: float | None
    standings: dict[str, Standing]  # by scenario
    scores: dict[str, float | None]  # by scenario
    seconds: float | None  # training seconds per request (median over its requests)
    seeds: int | None

    @property
    def score(self) -> float | None:
        known = [s for s in self.scores.values() if s is not None]
        return statistics.fmean(known) if known and len(known) == len(self.scores) else None


def _estimate(row: ResultRow) -> Estimate:
    return Estimate(row.value, row.low, row.high)


def standing(rows: Sequence[ResultRow], scenario: str, label: str) -> Standing | None:
    """``label``'s numbers on ``scenario`` (pooled rows of its last request), or None when its
    cell did not finish."""
    mine = [
        r
        for r in rows
        if r.scenario == scenario and r.method == label and r.repeat is None and r.setting == ""
    ]
    if not mine or any(r.status != "ok" for r in mine):
        return None
    last = max(r.request for r in mine)
    values: dict[str, Estimate] = {}
    for r in mine:
        if r.request != last or r.modality != "all" or r.value is None:
            continue
        if r.metric == MATCHED:  # at matched forgetting (every training seed's path, pooled)
            key = {"forget": "matched_target", "retain": "matched_retain"}.get(r.split)
            key = key or ("matched_general" if r.split == "general" else None)
            if key is not None:
                values[key] = _estimate(r)
                if r.split == "forget":
                    values["matched_step"] = Estimate(r.step if r.step is not None else -1.0)
                if r.split == "forget" and r.seeds_reached is not None:  # of several seeds
                    # shown "k of n": the count, with the seeds in the place of a bound
                    values["matched_seeds"] = Estimate(float(r.seeds_reached), high=float(r.seeds))
            continue
        if r.step is not None:  # a point along the request, not its end state
            continue
        for key, (metric, split) in READS.items():
            if r.metric == metric and r.split == split:
                values[key] = _estimate(r)
    before = next(
        (
            r
            for r in rows
            if r.scenario == scenario and r.method == "before" and r.metric == "circular"
        ),
        None,
    )
    retain_before = next(
        (
            r
            for r in rows
            if r.scenario == scenario
            and r.method == "before"
            and (r.metric, r.split, r.modality) == ("accuracy", "retain", "all")
            and r.value is not None
        ),
        None,
    )
    if retain_before is not None:
        values["retain_before"] = Estimate(retain_before.value)
    if before is not None and before.value is not None:
        values["general_before"] = Estimate(before.value)
    general = values.get("general")
    if general is not None and before is not None and before.value is not None:
        change = next((r for r in mine if r.metric == "circular" and r.request == last), None)
        low = change.change_low if change is not None else None
        high = change.change_high if change is not None else None
        values["general_change"] = Estimate(general.value - before.value, low, high)
    for r in rows:
        if (
            r.scenario == "robustness"
            and r.method == label
            and r.setting.startswith(f"{scenario} ")
            and r.metric == "attack_change"
            and r.modality == "all"
            and r.split in RECOVERY_SPLITS
            and r.value is not None
        ):
            key = f"recovery {r.setting.split(' ', 1)[1]}"
            if key not in values or r.split == RECOVERY_SPLITS[0]:
                values[key] = _estimate(r)
    return Standing(scenario, label, values)


def seconds_per_request(
    manifest_stages: Mapping[str, Any], scenario: str, label: str
) -> float | None:
    times = [
        float(stage["train_seconds"])
        for name, stage in manifest_stages.items()
        if (name == f"{scenario}/{label}" or name.startswith(f"{scenario}/{label}/repeat-"))
        and isinstance(stage.get("train_seconds"), int | float)
    ]
    return statistics.median(times) if times else None


def entries(
    run_dir: Path,
    labels: Mapping[str, tuple[str, float | None]],
    scenarios: Sequence[str],
    rule: Rule,
    weights: Mapping[str, float],
) -> list[Entry]:
    """Every label's entry (``labels``: label -> (method, lr)), ranked: scored entries by their
    score, then those the rule could not score (a cell that did not finish)."""
    run = load_run(run_dir)
    out = []
    for label, (method, lr) in labels.items():
        standings = {s: standing(run.rows, s, label) for s in scenarios}
        scores = {
            s: (rule.score(st, weights) if st is not None else None) for s, st in standings.items()
        }
        times = [seconds_per_request(run.stages, s, label) for s in scenarios]
        known = [t for t in times if t is not None]
        seeds = [  # the training seeds pooled in its accuracy rows (chance rows never repeat)
            r.seeds
            for r in run.rows
            if r.method == label and r.repeat is None and r.metric == "accuracy" and r.seeds
        ]
        out.append(
            Entry(
                method=method,
                lr=lr,
                standings={s: st for s, st in standings.items() if st is not None},
                scores=scores,
                seconds=statistics.median(known) if known else None,
                seeds=max(seeds) if seeds else None,
            )
        )
    return sorted(out, key=lambda e: (e.score is None, e.score or 0.0, e.method, e.lr or 0.0))


def choose_learning_rates(
    sweep_dir: Path, config: Any, entries_by_label: Mapping[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each method's best-scored sweep entry (the rule on the sweep's scenario); a method none
    of whose entries finished keeps the run's own learning rate (factor 1 when swept)."""
    rule = get_rule(config.rule.name)
    weights = weights_of(rule, config.rule.weights)
    labels = {k: (v["method"], v.get("lr")) for k, v in entries_by_label.items()}
    ranked = entries(sweep_dir, labels, [config.sweep_on], rule, weights)
    chosen: dict[str, dict[str, Any]] = {}
    for entry in ranked:  # best first
        if entry.method not in chosen and entry.score is not None:
            label = next(k for k, v in labels.items() if v == (entry.method, entry.lr))
            chosen[entry.method] = dict(entries_by_label[label])
    for method, _lr in labels.values():
        if method not in chosen:
            candidates = [k for k, v in labels.items() if v[0] == method]
            middle = candidates[len(candidates) // 2]
            chosen[method] = dict(entries_by_label[middle])
    return {m: chosen[m] for m in dict.fromkeys(v[0] for v in labels.values())}


def _fmt(estimate: Estimate | None, kind: str) -> str:
    if estimate is None:
        return "–"
    if kind == "step":
        return "not reached" if estimate.value < 0 else f"{estimate.value:.1f}"
    if kind == "count":  # k of n
        return f"{estimate.value:.0f} of {estimate.high:.0f}"
    scale, digits = (100.0, 1) if kind == "pct" else (1.0, 3)
    text = f"{estimate.value * scale:.{digits}f}"
    if estimate.low is not None and estimate.high is not None:
        text += f" [{estimate.low * scale:.{digits}f}, {estimate.high * scale:.{digits}f}]"
    return text


def _columns(board: Sequence[Entry]) -> list[tuple[str, str, str]]:
    keys = {k for e in board for st in e.standings.values() for k in st.values}
    extra = sorted(k for k in keys if k.startswith("recovery "))
    return [c for c in COLUMNS if c[0] in keys] + [(k, k, "pct") for k in extra]


def table_rows(
    board: Sequence[Entry], scenarios: Sequence[str]
) -> tuple[list[str], list[list[str]]]:
    """Header and rows: rank, method, lr, score, then per scenario its columns, time, seeds."""
    columns = _columns(board)
    header = ["rank", "method", "lr", "score"]
    for s in scenarios:
        header += [f"{s}: score", *(f"{s}: {title}" for _, title, _ in columns)]
    header += ["s / request", "seeds"]
    rows = []
    scored = [round(e.score, 9) for e in board if e.score is not None]
    for entry in board:
        # tied scores share a rank (1, 2, 2, 4): the table's order among them is by name
        rank = 1 + sum(s < round(entry.score, 9) for s in scored) if entry.score is not None else 0
        row = [
            str(rank) if entry.score is not None else "–",
            entry.method,
            "–" if entry.lr is None else f"{entry.lr:g}",
            "–" if entry.score is None else f"{entry.score * 100:.1f}",
        ]
        for s in scenarios:
            st = entry.standings.get(s)
            score = entry.scores.get(s)
            row.append("–" if score is None else f"{score * 100:.1f}")
            row += [_fmt(st.values.get(key) if st else None, kind) for key, _, kind in columns]
        row.append("–" if entry.seconds is None else f"{entry.seconds:.1f}")
        row.append("–" if entry.seeds is None else str(entry.seeds))
        rows.append(row)
    return header, rows


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_leaderboard(
    board_dir: Path,
    sweep_dir: Path,
    config: Any,
    chosen: Mapping[str, Mapping[str, Any]],
    swept: Mapping[str, tuple[str, float | None]],
) -> dict[str, Path]:
    """Write the ranked table (and the sweep's) into the board's run directory."""
    rule = get_rule(config.rule.name)
    weights = weights_of(rule, config.rule.weights)
    scenarios = list(config.scenarios)
    labels = {m: (m, entry.get("lr")) for m, entry in chosen.items()}
    board = entries(board_dir, labels, scenarios, rule, weights)
    header, rows = table_rows(board, scenarios)
    sweep = entries(sweep_dir, dict(swept), [config.sweep_on], rule, weights)
    sweep_header, sweep_rows = table_rows(sweep, [config.sweep_on])
    statement = describe(rule, weights)
    intro = [
        f"Rule `{rule.name}`: {statement}",
        "Score and accuracies in points (%); intervals are 95 % (bootstrap over people, and over "
        "training seeds where there are several). Each method runs at the learning rate the "
        f"rule scores best on the `{config.sweep_on}` sweep (run's lr × "
        f"{', '.join(f'{f:g}' for f in config.lr_factors)}); s / request: training seconds per "
        "request (median).",
    ]
    md = ["# Leaderboard", "", *intro, "", *_markdown(header, rows), "",
          f"## Learning-rate sweep ({config.sweep_on}, one seed)", "",
          *_markdown(sweep_header, sweep_rows), ""]  # fmt: skip
    page = (
        "<!doctype html><meta charset='utf-8'><title>Leaderboard</title>"
        "<style>table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
        "font:13px sans-serif}</style><h1>Leaderboard</h1>"
        + "".join(f"<p>{html.escape(p)}</p>" for p in intro)
        + _html_table(header, rows)
        + f"<h2>Learning-rate sweep ({html.escape(config.sweep_on)}, one seed)</h2>"
        + _html_table(sweep_header, sweep_rows)
    )
    files = {
        "md": write_text(board_dir / f"{LEADERBOARD}.md", "\n".join(md)),
        "csv": write_text(board_dir / f"{LEADERBOARD}.csv", _csv(header, rows)),
        "html": write_text(board_dir / f"{LEADERBOARD}.html", page),
    }
    return files


def headline(board_dir: Path, limit: int = 20) -> str:
    """The ranked table's first columns as plain text (the terminal's summary)."""
    path = board_dir / f"{LEADERBOARD}.csv"
    if not path.is_file():
        return ""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    keep = [0, 1, 2, 3]
    lines = ["  ".join(f"{rows[0][i]:<10}" for i in keep)]
    lines += ["  ".join(f"{r[i]:<10}" for i in keep) for r in rows[1 : limit + 1]]
    return "\n".join(lines)
