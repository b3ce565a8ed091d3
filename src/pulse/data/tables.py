"""Delimited text (MMBench TSV, PEBench CSV): file line numbers for every row, case-insensitive
header matching, and empty-file checks shared by both readers."""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path

from pulse.errors import DataError
from pulse.files import write_text


@dataclass
class TextTable:
    """A parsed CSV / TSV: each data row comes with the file line where it starts (header = 1)."""

    file: Path
    header: list[str]
    rows: list[tuple[int, list[str]]]

    def column(self, *names: str, required: bool = True) -> int | None:
        """Index of the first of ``names`` in the header, matched case-insensitively."""
        lowered = [h.strip().lower() for h in self.header]
        for name in names:
            if name.lower() in lowered:
                return lowered.index(name.lower())
        if not required:
            return None
        raise DataError(
            self.file,
            f"missing column '{names[0]}' (columns found: {', '.join(self.header)})",
            row=1,
            field=names[0],
        )


def read_delimited(path: str | Path, delimiter: str) -> TextTable:
    """Read a delimited UTF-8 file, refusing empty files, ragged rows and header-only files."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    text = _utf8_text(path)
    if not text.strip():
        raise DataError(path, "the file is empty: expected a header line and data rows")
    # Base64 images are far longer than csv's default 128 KiB field limit.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1  # a quoted cell may span several lines
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            if header is None:
                header = cells
            elif len(cells) != len(header):
                raise DataError(
                    path,
                    f"expected {len(header)} cells like the header, found {len(cells)}",
                    row=line,
                )
            else:
                rows.append((line, cells))
    except csv.Error as exc:
        raise DataError(path, f"malformed delimited text ({exc})", row=start) from None
    assert header is not None  # the file is not blank
    lowered = [h.strip().lower() for h in header]
    for name in lowered:
        if lowered.count(name) > 1:
            raise DataError(path, f"column '{name}' appears twice in the header", row=1)
    if not rows:
        raise DataError(path, "no data rows: expected at least one row after the header")
    return TextTable(path, header, rows)


def _utf8_text(path: Path) -> str:
    """The file's UTF-8 text (a leading BOM, which Excel writes, dropped); text that is not
    UTF-8 is one line naming the file line (a row's number, header = 1) of the first bad byte."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        detail = f"not UTF-8 text (byte 0x{data[exc.start]:02x}): save the file as UTF-8"
        raise DataError(path, detail, row=line) from None


def write_delimited(
    path: str | Path, header: list[str], rows: list[list[str]], delimiter: str
) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_text(path, buf.getvalue())
