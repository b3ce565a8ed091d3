"""MMBench TSV (general capability): reader, writer, CircularEval rotations, conversion to items.

A row is one image question with up to four options. In CircularEval files, rows whose index is
``>= 1_000_000`` are option-rotated copies of question ``index % 1_000_000``; a question counts as
solved only if every rotation is.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from pulse.data.images import b64_encode, b64_image
from pulse.data.schema import OPTION_LETTERS, ItemKind, Modality, QAItem
from pulse.data.tables import TextTable, read_delimited, write_delimited
from pulse.data.text import options_problem, text_problem
from pulse.errors import DataError

COLUMNS = (
    "index",
    "question",
    "hint",
    "A",
    "B",
    "C",
    "D",
    "answer",
    "category",
    "image",
    "source",
    "l2-category",
    "comment",
    "split",
)
MMBENCH_LETTERS = OPTION_LETTERS[:4]
CIRCULAR_STEP = 1_000_000
# VLMEvalKit writes a row's image as the index of another row with the same image when it is
# shared; such references are short digit strings, which no base64 PNG / JPEG ever is.
_MAX_REFERENCE_LEN = 64


@dataclass(frozen=True)
class MMBenchRow:
    index: int
    question: str
    options: dict[str, str]  # only the non-empty options, in letter order
    answer: str  # a key of ``options``
    image: bytes = field(repr=False)
    hint: str = ""
    category: str = ""
    l2_category: str = ""
    source: str = ""
    comment: str = ""
    split: str = ""


def base_index(row: MMBenchRow) -> int:
    """The question a CircularEval copy was made from."""
    return row.index % CIRCULAR_STEP


# --- reading ----------------------------------------------------------------------------------


def read_mmbench(path: str | Path) -> list[MMBenchRow]:
    """Read an MMBench TSV with answers (dev split); headers are matched case-insensitively."""
    table = read_delimited(path, "\t")
    col = _Columns(table)
    rows: list[MMBenchRow] = []
    raw_images: dict[int, tuple[int, str]] = {}  # index -> (line, image cell)
    lines: dict[int, int] = {}  # index -> line, to name both lines of a duplicate
    for line, cells in table.rows:
        row = col.row(line, cells)
        if row.index in lines:
            raise DataError(
                table.file,
                f"index {row.index} already used on line {lines[row.index]}",
                row=line,
                field="index",
            )
        lines[row.index] = line
        raw_images[row.index] = (line, cells[col.image].strip())
        rows.append(row)
    _check_rotations(table.file, rows, lines)
    images = _decode_images(table.file, raw_images)
    return [replace(row, image=images[row.index]) for row in rows]


def _check_rotations(file: Path, rows: list[MMBenchRow], lines: dict[int, int]) -> None:
    """Rotated copies of a question must carry its category and l2-category: CircularEval
    scores them as one question, and refuses copies that disagree."""
    first: dict[int, MMBenchRow] = {}
    for row in sorted(rows, key=lambda r: r.index):
        base = first.setdefault(base_index(row), row)
        for name, column in (("category", "category"), ("l2_category", "l2-category")):
            if getattr(row, name) != getattr(base, name):
                raise DataError(
                    file,
                    f"{getattr(row, name)!r} differs from {getattr(base, name)!r} of row index "
                    f"{base.index} (line {lines[base.index]}), the same question",
                    row=lines[row.index],
                    field=column,
                )


def _is_reference(cell: str) -> bool:
    # ASCII only: str.isdigit() also takes '²', which int() refuses.
    return cell.isascii() and cell.isdigit() and len(cell) <= _MAX_REFERENCE_LEN


def _decode_images(file: Path, raw: dict[int, tuple[int, str]]) -> dict[int, bytes]:
    """Decode each base64 image once; resolve the rows that point at another row's image."""
    decoded: dict[int, bytes] = {}
    for index, (line, cell) in raw.items():
        if not cell:
            raise DataError(
                file, "expected base64 image data, found an empty value", row=line, field="image"
            )
        if not _is_reference(cell):
            decoded[index] = b64_image(cell, file, row=line, field="image")
    out: dict[int, bytes] = {}
    for index, (line, cell) in raw.items():
        if index in decoded:
            out[index] = decoded[index]
            continue
        target = int(cell)
        if target not in decoded:
            why = "no row has that index" if target not in raw else "that row holds no image data"
            raise DataError(
                file, f"image refers to row index {target}, but {why}", row=line, field="image"
            )
        out[index] = decoded[target]
    return out


class _Columns:
    """Column positions of one TSV, and the parsing of its rows."""

    def __init__(self, table: TextTable) -> None:
        self.file = table.file
        self.index = table.column("index")
        self.question = table.column("question")
        self.answer = table.column("answer")
        self.image = table.column("image")
        self.letters = {
            letter: i
            for letter in OPTION_LETTERS
            if (i := table.column(letter, required=letter in "AB")) is not None
        }
        self.optional = {
            name: table.column(*aliases, required=False)
            for name, aliases in {
                "hint": ("hint",),
                "category": ("category",),
                "l2_category": ("l2-category", "l2_category"),
                "source": ("source",),
                "comment": ("comment",),
                "split": ("split",),
            }.items()
        }

    def row(self, line: int, cells: list[str]) -> MMBenchRow:
        options = {letter: cells[i] for letter, i in self.letters.items() if not _empty(cells[i])}
        if len(options) < 2:
            raise DataError(
                self.file, "expected at least two non-empty options", row=line, field="A"
            )
        answer = cells[self.answer].strip()
        if answer not in options:
            raise DataError(
                self.file,
                f"answer {answer!r} is not the letter of a non-empty option "
                f"(options: {', '.join(options)})",
                row=line,
                field="answer",
            )
        question = cells[self.question]
        if not question.strip():
            raise DataError(
                self.file, "expected a question, found an empty value", row=line, field="question"
            )
        extra = {
            name: "" if i is None or _empty(cells[i]) else cells[i]
            for name, i in self.optional.items()
        }
        texts = {"question": question, "hint": extra.get("hint", ""), **options}
        for field_name, text in texts.items():
            problem = text_problem(text)
            if problem is not None:
                raise DataError(self.file, problem, row=line, field=field_name)
        problem = options_problem(options)
        if problem is not None:
            raise DataError(self.file, problem, row=line, field="A")
        return MMBenchRow(
            index=self.parse_index(line, cells[self.index]),
            question=question,
            options=options,
            answer=answer,
            image=b"",  # decoded once all rows are known (rows may point at each other)
            **extra,
        )

    def parse_index(self, line: int, cell: str) -> int:
        text = cell.strip()
        if not (text.isascii() and text.isdigit()):
            raise DataError(
                self.file,
                f"expected a non-negative integer, found {cell!r}",
                row=line,
                field="index",
            )
        return int(text)


def _empty(cell: str) -> bool:
    # pandas writes missing values as "" and some copies carry a literal "nan".
    return not cell.strip() or cell.strip().lower() == "nan"


# --- writing ----------------------------------------------------------------------------------


def write_mmbench(path: str | Path, rows: list[MMBenchRow]) -> Path:
    """Write the published column order; every image is written in full as base64."""
    path = Path(path)
    if not rows:
        raise DataError(path, "refusing to write zero rows")
    seen: dict[int, int] = {}
    out = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        _check_row(path, line, row)
        if row.index in seen:
            raise DataError(
                path,
                f"index {row.index} already used on line {seen[row.index]}",
                row=line,
                field="index",
            )
        seen[row.index] = line
        opts = [row.options.get(letter, "") for letter in MMBENCH_LETTERS]
        out.append(
            [
                str(row.index),
                row.question,
                row.hint,
                *opts,
                row.answer,
                row.category,
                b64_encode(row.image),
                row.source,
                row.l2_category,
                row.comment,
                row.split,
            ]
        )
    return write_delimited(path, list(COLUMNS), out, "\t")


def _check_row(path: Path, line: int, row: MMBenchRow) -> None:
    extra = [k for k in row.options if k not in MMBENCH_LETTERS]
    if extra:
        raise DataError(
            path, f"option {extra[0]!r} has no MMBench column (A-D)", row=line, field=extra[0]
        )
    if row.answer not in row.options:
        raise DataError(
            path, f"answer {row.answer!r} is not one of the options", row=line, field="answer"
        )
    if row.index < 0:
        raise DataError(
            path, f"expected a non-negative index, found {row.index}", row=line, field="index"
        )


# --- CircularEval and items ---------------------------------------------------------------------


def rotations(row: MMBenchRow) -> list[MMBenchRow]:
    """The n circular shifts of a question's n options (k = 0 is the question itself).

    Copy k shows under letter i the option that was at i + k, has index ``base + k * 1_000_000``
    and its answer letter moved accordingly. Options are re-lettered from A, so a question with
    a gap (C empty but D set) comes back gap-free.
    """
    letters = [letter for letter in OPTION_LETTERS if letter in row.options]
    texts = [row.options[letter] for letter in letters]
    n, gold = len(texts), letters.index(row.answer)
    base = base_index(row)
    return [
        replace(
            row,
            index=base + k * CIRCULAR_STEP,
            options={OPTION_LETTERS[i]: texts[(i + k) % n] for i in range(n)},
            answer=OPTION_LETTERS[(gold - k) % n],
        )
        for k in range(n)
    ]


def row_item(row: MMBenchRow) -> QAItem:
    return QAItem(
        id=f"mmbench/{row.index}",
        entity_id="",
        kind=ItemKind.MCQ,
        modality=Modality.MULTIMODAL,
        question=row.question,
        answer=row.answer,
        options=dict(row.options),
        image=row.image,
        meta={
            "category": row.category,
            "l2_category": row.l2_category,
            "hint": row.hint,
            "base_index": str(base_index(row)),
        },
    )


def mmbench_file(data_dir: str | Path) -> Path:
    """The TSV itself, or a directory's ``mmbench/dev.tsv`` (a world) or ``dev.tsv``."""
    data_dir = Path(data_dir)
    if data_dir.is_file():
        return data_dir
    for candidate in (data_dir / "mmbench" / "dev.tsv", data_dir / "dev.tsv"):
        if candidate.is_file():
            return candidate
    raise DataError(data_dir, "no MMBench TSV: expected mmbench/dev.tsv here, or pass a .tsv file")
