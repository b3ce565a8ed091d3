"""``pulse data validate``: read a whole dataset with every check on; summarise it in one line."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pulse.data import mllmu, mmbench, pebench
from pulse.errors import ConfigError

FORMATS = ("mllmu", "mmbench", "pebench")


def validate(format: str, path: str | Path) -> str:
    """Read the dataset at ``path``; return a one-line summary or raise :class:`DataError`."""
    summarise = {"mllmu": _mllmu, "mmbench": _mmbench, "pebench": _pebench}.get(format.lower())
    if summarise is None:
        raise ConfigError(f"unknown data format {format!r}: expected one of {', '.join(FORMATS)}")
    return summarise(Path(path))


def _mllmu(path: Path) -> str:
    # A root with config folders is validated config by config; otherwise one config / file.
    path = mllmu.mllmu_root(path)  # a world directory: its mllmu/
    configs = mllmu.list_configs(path) if path.is_dir() else []
    if configs:
        parts = [f"{c}: {_mllmu_counts(mllmu.read_mllmu(path, c))}" for c in configs]
        return f"MLLMU-Bench {path}: {len(configs)} configs OK ({'; '.join(parts)})"
    return f"MLLMU-Bench {path}: OK ({_mllmu_counts(mllmu.read_mllmu(path))})"


def _mllmu_counts(profiles: list[mllmu.MLLMUProfile]) -> str:
    kinds = Counter(
        f"{item.kind} {item.modality}" for p in profiles for item in mllmu.profile_items(p)
    )
    items = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    pairs = sum(len(mllmu.profile_train_pairs(p)) for p in profiles)
    return f"{len(profiles)} profiles, {items or 'no questions'}, {pairs} training pairs"


def _mmbench(path: Path) -> str:
    if path.is_dir():  # a world directory or a folder holding dev.tsv
        path = mmbench.mmbench_file(path)
    rows = mmbench.read_mmbench(path)
    questions = {mmbench.base_index(r) for r in rows}
    categories = {r.category for r in rows if r.category}
    l2 = {r.l2_category for r in rows if r.l2_category}
    return (
        f"MMBench {path}: OK ({len(rows)} rows, {len(questions)} questions, "
        f"{len(rows) - len(questions)} circular copies, {len(categories)} categories, "
        f"{len(l2)} l2-categories)"
    )


def _pebench(path: Path) -> str:
    if (path / "pebench" / pebench.CSV_NAME).is_file():  # a world directory
        path = path / "pebench"
    rows = pebench.read_pebench(path)
    persons = {r.person for r in rows}
    events = {r.event for r in rows}
    splits = Counter(r.split or "(none)" for r in rows)
    split_text = ", ".join(f"{name} {n}" for name, n in sorted(splits.items()))
    return (
        f"PEBench {path}: OK ({len(rows)} images, {len(persons)} persons, {len(events)} events; "
        f"splits: {split_text})"
    )
