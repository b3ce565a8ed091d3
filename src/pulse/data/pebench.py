"""PEBench (Xu et al., 2025): ``PEBench.csv`` plus an image folder.

Each row is one image of one fictitious person in one event scene, with the event's keywords.
The published column names are not documented, so they are mapped through
:class:`PEBenchColumns`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from pulse.data.images import check_image, check_relative, read_image_file
from pulse.data.tables import read_delimited, write_delimited
from pulse.errors import DataError
from pulse.files import write_bytes

CSV_NAME = "PEBench.csv"
# The split column's values (any case): seen images (empty counts as seen) and unseen ones.
SEEN_SPLITS = ("seen", "train", "forget", "")
UNSEEN_SPLITS = ("unseen", "test", "holdout")


@dataclass(frozen=True)
class PEBenchColumns:
    """CSV column names (matched case-insensitively).

    ``split`` and ``description`` are optional: a missing column gives "" when the default name is
    kept, and is an error when a name was chosen explicitly. ``None`` ignores the column.
    """

    person: str = "person"
    event: str = "event"
    image: str = "image"
    keywords: str = "keywords"
    split: str | None = "split"
    description: str | None = "description"


@dataclass
class PEBenchRow:
    person: str
    event: str
    image_path: str  # relative to the dataset root, "/"-separated
    image: bytes = field(repr=False)
    keywords: list[str] = field(default_factory=list)
    split: str = ""
    description: str = ""


def read_pebench(
    csv_path: str | Path,
    image_root: str | Path | None = None,
    columns: PEBenchColumns = PEBenchColumns(),  # frozen, so safe as a default
) -> list[PEBenchRow]:
    """Read the CSV (or a folder holding ``PEBench.csv``) and every image it names.

    Images are looked up under ``image_root``, by default the CSV's folder; paths that are
    absolute or leave that folder are refused.
    """
    csv_path = Path(csv_path)
    if csv_path.is_dir():
        csv_path = csv_path / CSV_NAME
    table = read_delimited(csv_path, ",")
    root = Path(image_root) if image_root is not None else csv_path.parent
    required = {
        name: table.column(getattr(columns, name))
        for name in ("person", "event", "image", "keywords")
    }
    defaults = {f.name: f.default for f in fields(PEBenchColumns)}
    optional = {
        name: table.column(col, required=col != defaults[name])
        for name in ("split", "description")
        if (col := getattr(columns, name)) is not None
    }
    rows = []
    for line, cells in table.rows:
        value = {
            name: _required(cells[i], csv_path, line, getattr(columns, name))
            for name, i in required.items()
        }
        rel = check_relative(value["image"], csv_path, row=line, field=columns.image)
        extra = {name: "" if i is None else cells[i].strip() for name, i in optional.items()}
        if "split" in extra:
            _check_split(extra["split"], csv_path, line, columns.split)
        rows.append(
            PEBenchRow(
                person=value["person"],
                event=value["event"],
                image_path=rel,
                image=read_image_file(root, rel, csv_path, row=line, field=columns.image),
                keywords=_keywords(value["keywords"], csv_path, line, columns.keywords),
                **extra,
            )
        )
    return rows


def _required(cell: str, file: Path, line: int, field: str) -> str:
    text = cell.strip()
    if not text:
        raise DataError(file, "expected a non-empty value", row=line, field=field)
    return text


def _check_split(value: str, file: Path, line: int, field: str | None) -> None:
    """A split evaluation can group: seen or unseen."""
    if value.lower() not in (*SEEN_SPLITS, *UNSEEN_SPLITS):
        raise DataError(
            file,
            f"expected a seen split ({', '.join(repr(s) for s in SEEN_SPLITS)}) or an unseen "
            f"one ({', '.join(repr(s) for s in UNSEEN_SPLITS)}), got {value!r}",
            row=line,
            field=field,
        )


def _keywords(text: str, file: Path, line: int, field: str) -> list[str]:
    """A JSON list of strings, or text separated by ';' (else ',')."""
    if text.startswith("["):
        try:
            words = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(file, f"not a valid JSON list ({exc})", row=line, field=field) from None
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise DataError(file, "expected a JSON list of strings", row=line, field=field)
    else:
        words = text.split(";" if ";" in text else ",")
    words = [w.strip() for w in words if w.strip()]
    if not words:
        raise DataError(file, "expected at least one keyword", row=line, field=field)
    return words


def write_pebench(root: str | Path, rows: list[PEBenchRow]) -> Path:
    """Write ``root/PEBench.csv`` (default column names, keywords as a JSON list) and the images."""
    root = Path(root)
    csv_path = root / CSV_NAME
    if not rows:
        raise DataError(csv_path, "refusing to write zero rows")
    images: dict[str, bytes] = {}
    out = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        rel = check_relative(row.image_path, csv_path, row=line, field="image")
        check_image(row.image, csv_path, row=line, field="image")
        if images.setdefault(rel, row.image) != row.image:
            raise DataError(
                csv_path, f"two different images for the path {rel!r}", row=line, field="image"
            )
        if not row.keywords or not all(w.strip() for w in row.keywords):
            raise DataError(csv_path, "expected non-empty keywords", row=line, field="keywords")
        keywords = json.dumps(row.keywords, ensure_ascii=False)
        out.append([row.person, row.event, rel, keywords, row.split, row.description])
    for rel, data in images.items():
        write_bytes(root / rel, data)
    header = ["person", "event", "image", "keywords", "split", "description"]
    return write_delimited(csv_path, header, out, ",")
