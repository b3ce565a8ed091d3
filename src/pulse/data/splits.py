"""Splits are ID lists persisted as text files, one ID per line (``#`` starts a comment)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pulse.errors import DataError
from pulse.files import read_text, write_text


def write_split(path: str | Path, ids: Iterable[str]) -> Path:
    ids = list(ids)
    if not ids:
        raise DataError(path, "refusing to write an empty split")
    for row, entry in enumerate(ids, start=1):
        # The reader strips whitespace and cuts at '#': refuse IDs that would not read back.
        if not entry or entry != entry.strip() or "#" in entry or len(entry.splitlines()) != 1:
            raise DataError(path, f"ID {entry!r} cannot be stored in a split file", row=row)
    if len(set(ids)) != len(ids):
        raise DataError(path, "refusing to write an ID twice")
    return write_text(path, "".join(f"{i}\n" for i in ids))


def read_split(path: str | Path, known: Iterable[str] | None = None) -> list[str]:
    """Read a split; with ``known``, every ID must be one of them."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "split file not found")
    ids: list[str] = []
    rows: list[int] = []
    seen: set[str] = set()
    for row, line in enumerate(read_text(path).splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if entry in seen:
            raise DataError(path, f"ID {entry!r} is listed twice", row=row)
        seen.add(entry)
        ids.append(entry)
        rows.append(row)
    if not ids:
        raise DataError(path, "the split is empty: expected at least one ID")
    if known is not None:
        known_set = set(known)
        for row, entry in zip(rows, ids, strict=True):
            if entry not in known_set:
                raise DataError(path, f"unknown ID {entry!r}", row=row)
    return ids
