"""Atomic file writes (a file is either complete or absent, never half-written) and reads
that turn a damaged file into one line naming it."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pulse.errors import DataError


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then move the temporary file onto ``path`` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, obj: Any) -> Path:
    """Write JSON with sorted keys so the same object always gives the same bytes."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_text(path: str | Path) -> str:
    """The UTF-8 text of ``path``; a file that is not UTF-8 (or cannot be read) is a
    :class:`~pulse.errors.DataError` naming it and where the first bad byte is."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    return decode_text(data, path)


def decode_text(data: bytes, path: str | Path, *, row: int | None = None) -> str:
    """``data`` decoded as UTF-8, or a one-line :class:`~pulse.errors.DataError`."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        where = "" if row is not None else f" on line {line}"
        detail = f"not UTF-8 text (byte 0x{data[exc.start]:02x}{where})"
        raise DataError(path, detail, row=row) from None


def read_json(path: str | Path) -> Any:
    """The JSON value in ``path``; a truncated or otherwise invalid file is a one-line
    :class:`~pulse.errors.DataError` naming it."""
    text = read_text(path)
    try:
        return json.loads(text)
    except ValueError as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise DataError(path, f"not valid JSON{where}: truncated or damaged") from None


def sha256_file(path: str | Path) -> str:
    """The SHA-256 of a file's bytes (what a finished stage records to verify on resume)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_digests(folder: Path, skip: frozenset[str] = frozenset()) -> dict[str, str]:
    """The SHA-256 of each file directly in ``folder`` (but ``skip``), by name: recorded when
    a folder is finished, so a damaged one is never read back as done."""
    return {
        p.name: sha256_file(p)
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name not in skip
    }


def digest_problem(folder: Path, recorded: dict[str, str], writer: str) -> str | None:
    """The first file of ``recorded`` missing from ``folder`` or changed since ``writer``
    wrote it, in words; None when every one is as recorded."""
    for name, digest in recorded.items():
        if not (folder / name).is_file():
            return f"{name} is missing"
        if sha256_file(folder / name) != digest:
            return f"{name} differs from what {writer} (SHA-256 mismatch)"
    return None
