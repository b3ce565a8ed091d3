"""MLLMU-Bench (Liu et al., NAACL 2025): parquet reader and writer, and conversion to the schema.

On disk a dataset is ``ROOT/{config}/train-00000-of-00001.parquet`` (one folder per Hugging Face
config). Each row is one fictitious or real person: a face image, a JSON biography and the
multiple-choice, cloze and generation questions about them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pulse.data.images import check_image
from pulse.data.schema import (
    OPTION_LETTERS,
    Entity,
    EntityKind,
    ItemKind,
    Modality,
    QAItem,
    TrainPair,
)
from pulse.data.text import options_problem, text_problem
from pulse.errors import ConfigError, DataError
from pulse.files import atomic_write

KNOWN_CONFIGS = (
    "Full_Set",
    "Retain_Set",
    "Test_Set",
    "ft_Data",
    "forget_5",
    "forget_10",
    "forget_15",
    "retain_95",
    "retain_90",
    "retain_85",
    # pulse's own: people never trained on (membership inference's non-members)
    "Holdout_Set",
    "Holdout_Celebrities",
)
_OTHER_CONFIG = re.compile(r"(forget|retain)_[A-Za-z0-9_]+")
PARQUET_NAME = "train-00000-of-00001.parquet"
MCQ_LETTERS = OPTION_LETTERS[:4]  # the parquet schema has exactly A-D
TASK_TYPES = {"Image_Textual": Modality.MULTIMODAL, "Pure_Text": Modality.TEXT}


@dataclass(frozen=True)
class MCQ:
    """One multiple-choice question: ``options`` holds only the non-empty options."""

    question: str
    options: dict[str, str]
    answer: str  # a letter, key of ``options``


@dataclass(frozen=True)
class OpenQuestion:
    """A cloze (``Mask_Task``, question with a ``__`` blank) or generation question."""

    question: str
    ground_truth: str
    type: str  # "Image_Textual" or "Pure_Text"


@dataclass
class MLLMUProfile:
    id: str
    image: bytes
    image_path: str = ""
    biography: dict[str, Any] = field(default_factory=dict)
    question: str = ""
    answer: str = ""
    mcq_image: list[MCQ] = field(default_factory=list)
    mcq_text: list[MCQ] = field(default_factory=list)
    mask: list[OpenQuestion] = field(default_factory=list)
    generation: list[OpenQuestion] = field(default_factory=list)
    metadata: list[tuple[str, str]] | None = None  # training QA pairs (ft_Data and the like)
    extra_images: list[tuple[bytes, str]] = field(default_factory=list)  # (bytes, path)


# --- parquet schema ---------------------------------------------------------------------------

_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
_MCQ = pa.struct(
    [
        ("Question", pa.string()),
        ("Options", pa.struct([(letter, pa.string()) for letter in MCQ_LETTERS])),
        ("Correct_Answer", pa.string()),
    ]
)
_TASK = pa.struct([("Question", pa.string()), ("Ground_Truth", pa.string()), ("Type", pa.string())])
_COLUMNS = {
    "image": _IMAGE,
    "ID": pa.string(),
    "biography": pa.string(),
    "question": pa.string(),
    "answer": pa.string(),
    "Classification_Task": pa.struct(
        [("Image_Textual_Questions", pa.list_(_MCQ)), ("Pure_Text_Questions", pa.list_(_MCQ))]
    ),
    "Mask_Task": pa.list_(_TASK),
    "Generation_Task": pa.list_(_TASK),
    "metadata": pa.string(),
    "images": pa.list_(_IMAGE),
}


def is_config_name(name: str) -> bool:
    return name in KNOWN_CONFIGS or _OTHER_CONFIG.fullmatch(name) is not None


def list_configs(root: str | Path) -> list[str]:
    """The config folders under ``root`` that hold at least one parquet file."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "MLLMU-Bench root folder not found")
    return sorted(d.name for d in root.iterdir() if d.is_dir() and any(d.glob("*.parquet")))


# --- reading ----------------------------------------------------------------------------------


def read_mllmu(root_or_file: str | Path, config: str | None = None) -> list[MLLMUProfile]:
    """Read one config (``root`` + ``config``), a config folder, or a single parquet file."""
    profiles: list[MLLMUProfile] = []
    first_row: dict[str, tuple[Path, int]] = {}
    for file in _parquet_files(Path(root_or_file), config):
        for row, profile in enumerate(_read_file(file), start=1):
            if profile.id in first_row:
                seen_file, seen_row = first_row[profile.id]
                raise DataError(
                    file,
                    f"ID {profile.id!r} already used at {seen_file}, row {seen_row}",
                    row=row,
                    field="ID",
                )
            first_row[profile.id] = (file, row)
            profiles.append(profile)
    return profiles


def mllmu_root(data_dir: str | Path) -> Path:
    """``DATA/mllmu`` when it exists (a world directory), else ``DATA``."""
    data_dir = Path(data_dir)
    return data_dir / "mllmu" if (data_dir / "mllmu").is_dir() else data_dir


def count_profiles(root_or_file: str | Path, config: str | None = None) -> int:
    """How many profiles :func:`read_mllmu` would read, from the files' row counts alone
    (no row is decoded: a check need not read every image; the read itself validates)."""
    total = 0
    for file in _parquet_files(Path(root_or_file), config):
        try:
            total += pq.ParquetFile(file).metadata.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise DataError(file, f"not a readable parquet file ({exc})") from None
    return total


def _parquet_files(path: Path, config: str | None) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(path, "not found: expected an MLLMU-Bench root folder or a parquet file")
    folder = path / config if config else path
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if files:
        return files
    found = ", ".join(list_configs(path)) or "none"
    if config:
        raise DataError(folder, f"no parquet file for config '{config}' (configs found: {found})")
    raise DataError(path, f"no parquet file here: name a config (configs found: {found})")


def _read_file(file: Path) -> list[MLLMUProfile]:
    if file.stat().st_size == 0:
        raise DataError(file, "the file is empty: expected a parquet file")
    try:
        table = pq.read_table(file)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(file, f"not a readable parquet file ({exc})") from None
    if table.num_rows == 0:
        raise DataError(file, "no rows: expected at least one profile")
    names = set(table.column_names)
    for required in ("ID", "biography"):
        if required not in names:
            raise DataError(file, _missing(required, table.column_names), field=required)
    if not names & {"image", "images"}:
        raise DataError(file, _missing("image", table.column_names), field="image")
    return [_Row(file, i).profile(rec) for i, rec in enumerate(table.to_pylist(), start=1)]


def _missing(name: str, found: list[str]) -> str:
    return f"missing column '{name}' (columns found: {', '.join(found)})"


@dataclass
class _Row:
    """Parses the cells of one parquet row; every error names this file and row."""

    file: Path
    row: int

    def fail(self, field: str, message: str) -> DataError:
        return DataError(self.file, message, row=self.row, field=field)

    def profile(self, rec: dict[str, Any]) -> MLLMUProfile:
        image, image_path, extras = self.images(rec)
        mcq = self.json(rec.get("Classification_Task"), "Classification_Task", dict) or {}
        return MLLMUProfile(
            id=self.text(rec.get("ID"), "ID", required=True),
            image=image,
            image_path=image_path,
            biography=self.biography(rec.get("biography")),
            question=self.text(rec.get("question"), "question"),
            answer=self.text(rec.get("answer"), "answer"),
            mcq_image=self.mcqs(mcq, "Image_Textual_Questions"),
            mcq_text=self.mcqs(mcq, "Pure_Text_Questions"),
            mask=self.open_questions(rec.get("Mask_Task"), "Mask_Task"),
            generation=self.open_questions(rec.get("Generation_Task"), "Generation_Task"),
            metadata=self.metadata(rec.get("metadata")),
            extra_images=extras,
        )

    def text(self, value: Any, field: str, *, required: bool = False) -> str:
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise self.fail(field, "expected a non-empty value")
            return ""
        if isinstance(value, str | int | float):
            problem = text_problem(str(value))
            if problem is not None:
                raise self.fail(field, problem)
            return str(value)
        raise self.fail(field, f"expected text, found {type(value).__name__}")

    def json(self, value: Any, field: str, kind: type) -> Any:
        """A nested cell: a struct / list, or the same content as a JSON string (mirrors)."""
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise self.fail(field, f"not valid JSON ({exc})") from None
        if not isinstance(value, kind):
            expected = "an object" if kind is dict else "a list"
            raise self.fail(field, f"expected {expected}, found {type(value).__name__}")
        return value

    def biography(self, value: Any) -> dict[str, Any]:
        bio = self.json(value, "biography", dict)
        if not bio:
            raise self.fail("biography", "expected a JSON object with at least a 'Name' key")
        if not isinstance(bio.get("Name"), str) or not bio["Name"].strip():
            raise self.fail("biography", "expected a non-empty 'Name' key in the JSON object")
        return bio

    def image(self, value: Any, field: str) -> tuple[bytes, str]:
        # Hugging Face stores images as {bytes, path}; accept raw bytes as well.
        if isinstance(value, dict):
            data, path = value.get("bytes"), value.get("path") or ""
        else:
            data, path = value, ""
        return check_image(data, self.file, row=self.row, field=field), str(path)

    def images(self, rec: dict[str, Any]) -> tuple[bytes, str, list[tuple[bytes, str]]]:
        extras = [
            self.image(value, f"images[{k}]")
            for k, value in enumerate(self.json(rec.get("images"), "images", list) or [])
        ]
        if rec.get("image") is not None:
            return *self.image(rec["image"], "image"), extras
        # Some copies of Test_Set carry only ``images``: the first is then the canonical one.
        if not extras:
            raise self.fail("image", "expected an image, found none")
        return *extras[0], extras[1:]

    def mcqs(self, task: dict[str, Any], group: str) -> list[MCQ]:
        where = f"Classification_Task.{group}"
        entries = self.json(task.get(group), where, list) or []
        return [self.mcq(entry, f"{where}[{k}]") for k, entry in enumerate(entries)]

    def mcq(self, entry: Any, where: str) -> MCQ:
        entry = self.json(entry, where, dict) or {}
        raw = self.json(entry.get("Options"), f"{where}.Options", dict) or {}
        options = {str(k): str(v) for k, v in raw.items() if v is not None and str(v).strip()}
        bad = [k for k in options if k not in MCQ_LETTERS]
        if bad:
            raise self.fail(f"{where}.Options", f"unexpected option {bad[0]!r}: expected A-D")
        if len(options) < 2:
            raise self.fail(f"{where}.Options", "expected at least two non-empty options")
        for letter, option in options.items():
            problem = text_problem(option)
            if problem is not None:
                raise self.fail(f"{where}.Options.{letter}", problem)
        problem = options_problem(options)
        if problem is not None:
            raise self.fail(f"{where}.Options", problem)
        answer = self.text(entry.get("Correct_Answer"), f"{where}.Correct_Answer", required=True)
        return MCQ(
            question=self.text(entry.get("Question"), f"{where}.Question", required=True),
            options=options,
            answer=self.letter(answer, options, f"{where}.Correct_Answer"),
        )

    def letter(self, answer: str, options: dict[str, str], field: str) -> str:
        """Map a letter, an option's text or "B. text" to the option letter."""
        key = answer.strip()
        if key in options:
            return key
        by_text = [k for k, text in options.items() if text.strip().lower() == key.lower()]
        if len(by_text) == 1:
            return by_text[0]
        prefixed = re.match(r"([A-H])\s*[.):]", key)
        if prefixed and prefixed.group(1) in options:
            return prefixed.group(1)
        raise self.fail(
            field,
            f"answer {answer!r} is neither the letter nor the text of a non-empty option "
            f"(options: {', '.join(options)})",
        )

    def open_questions(self, value: Any, field: str) -> list[OpenQuestion]:
        out = []
        for k, entry in enumerate(self.json(value, field, list) or []):
            where = f"{field}[{k}]"
            entry = self.json(entry, where, dict) or {}
            kind = self.text(entry.get("Type"), f"{where}.Type", required=True)
            if kind not in TASK_TYPES:
                raise self.fail(
                    f"{where}.Type", f"expected Image_Textual or Pure_Text, found {kind!r}"
                )
            out.append(
                OpenQuestion(
                    question=self.text(entry.get("Question"), f"{where}.Question", required=True),
                    ground_truth=self.text(
                        entry.get("Ground_Truth"), f"{where}.Ground_Truth", required=True
                    ),
                    type=kind,
                )
            )
        return out

    def metadata(self, value: Any) -> list[tuple[str, str]] | None:
        pairs = self.json(value, "metadata", list)
        if pairs is None:
            return None
        out = []
        for k, pair in enumerate(pairs):
            pair = self.json(pair, f"metadata[{k}]", dict) or {}
            question = self.text(pair.get("Question"), f"metadata[{k}].Question", required=True)
            answer = self.text(pair.get("Answer"), f"metadata[{k}].Answer", required=True)
            out.append((question, answer))
        return out


# --- writing ----------------------------------------------------------------------------------


def write_mllmu(root: str | Path, config: str, profiles: list[MLLMUProfile]) -> Path:
    """Write ``root/config/train-00000-of-00001.parquet``; the same input gives the same bytes.

    Every profile is checked with the reader's own rules first, so a file we write always reads
    back. ``metadata`` and ``images`` columns are written only when some profile has them. The
    schema carries the datasets library's features (:func:`hf_features_metadata`).
    """
    if not is_config_name(config):
        raise ConfigError(
            f"unknown MLLMU-Bench config {config!r}: expected one of {', '.join(KNOWN_CONFIGS)} "
            "or a forget_* / retain_* name"
        )
    path = Path(root) / config / PARQUET_NAME
    if not profiles:
        raise DataError(path, "refusing to write zero profiles")
    names = [n for n in _COLUMNS if n not in ("metadata", "images")]
    if any(p.metadata is not None for p in profiles):
        names.append("metadata")
    if any(p.extra_images for p in profiles):
        names.append("images")
    records = [_checked_record(path, row, p) for row, p in enumerate(profiles, start=1)]
    first_row: dict[str, int] = {}
    for row, p in enumerate(profiles, start=1):
        if p.id in first_row:
            raise DataError(
                path, f"ID {p.id!r} already used at row {first_row[p.id]}", row=row, field="ID"
            )
        first_row[p.id] = row
    schema = pa.schema([(n, _COLUMNS[n]) for n in names])
    schema = schema.with_metadata(hf_features_metadata(schema))
    table = pa.Table.from_pylist([{n: r[n] for n in names} for r in records], schema=schema)
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="snappy"))


def hf_features_metadata(schema: pa.Schema) -> dict[str, str]:
    """The schema metadata the Hugging Face datasets library reads its features from: the
    columns as they are, except ``image`` (and each of ``images``) declared an ``Image``
    feature, as the published MLLMU-Bench declares it. ``datasets.load_dataset("parquet", ...)``
    then decodes the images; pyarrow, and so :func:`read_mllmu`, ignores the metadata."""
    from datasets import Features, Image, List

    features = Features.from_arrow_schema(schema)
    features["image"] = Image()
    if "images" in features:
        features["images"] = List(Image())
    return {"huggingface": json.dumps({"info": {"features": features.to_dict()}})}


def _checked_record(path: Path, row: int, p: MLLMUProfile) -> dict[str, Any]:
    """The parquet record of ``p``, refused unless the reader would give ``p`` back unchanged."""
    try:
        record = _record(p)
    except TypeError as exc:  # json.dumps of a biography holding e.g. bytes
        raise DataError(
            path, f"not JSON-serialisable ({exc})", row=row, field="biography"
        ) from None
    back = _Row(path, row).profile(record)  # raises on what a reader would refuse
    for f in fields(MLLMUProfile):
        if getattr(back, f.name) != getattr(p, f.name):
            raise DataError(
                path,
                "would not read back unchanged (answers must be option letters A-D, options and "
                "texts non-empty strings, biography a JSON object with string keys)",
                row=row,
                field=f.name,
            )
    return record


def _record(p: MLLMUProfile) -> dict[str, Any]:
    return {
        "image": {"bytes": p.image, "path": p.image_path},
        "ID": p.id,
        "biography": json.dumps(p.biography, ensure_ascii=False),
        "question": p.question,
        "answer": p.answer,
        "Classification_Task": {
            "Image_Textual_Questions": [_mcq_record(q) for q in p.mcq_image],
            "Pure_Text_Questions": [_mcq_record(q) for q in p.mcq_text],
        },
        "Mask_Task": [_task_record(q) for q in p.mask],
        "Generation_Task": [_task_record(q) for q in p.generation],
        "metadata": None
        if p.metadata is None
        else json.dumps([{"Question": q, "Answer": a} for q, a in p.metadata], ensure_ascii=False),
        "images": [{"bytes": data, "path": path} for data, path in p.extra_images],
    }


def _mcq_record(q: MCQ) -> dict[str, Any]:
    # Letters outside A-D would be dropped by the struct: keep them so the check below sees them.
    options = {letter: q.options.get(letter) for letter in MCQ_LETTERS}
    options.update({k: v for k, v in q.options.items() if k not in MCQ_LETTERS})
    return {"Question": q.question, "Options": options, "Correct_Answer": q.answer}


def _task_record(q: OpenQuestion) -> dict[str, str]:
    return {"Question": q.question, "Ground_Truth": q.ground_truth, "Type": q.type}


# --- conversion to the schema -----------------------------------------------------------------


def profile_entity(p: MLLMUProfile) -> Entity:
    """The person: name from the biography, the other biography fields as text attributes."""
    attributes = {
        key: value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        for key, value in p.biography.items()
        if key != "Name"
    }
    images = (p.image, *(data for data, _ in p.extra_images))
    return Entity(p.id, EntityKind.PERSON, str(p.biography.get("Name", "")), attributes, images)


def profile_items(p: MLLMUProfile) -> list[QAItem]:
    """All questions about ``p``; ids are ``{id}/{kind}/...`` and stable across reads."""
    items = []
    for modality, mcqs in ((Modality.MULTIMODAL, p.mcq_image), (Modality.TEXT, p.mcq_text)):
        for k, q in enumerate(mcqs):
            items.append(
                QAItem(
                    id=f"{p.id}/mcq/{modality}/{k}",
                    entity_id=p.id,
                    kind=ItemKind.MCQ,
                    modality=modality,
                    question=q.question,
                    answer=q.answer,
                    options=dict(q.options),
                    image=p.image if modality is Modality.MULTIMODAL else None,
                )
            )
    for kind, questions in ((ItemKind.CLOZE, p.mask), (ItemKind.GENERATION, p.generation)):
        for k, q in enumerate(questions):
            modality = TASK_TYPES[q.type]
            items.append(
                QAItem(
                    id=f"{p.id}/{kind}/{k}",
                    entity_id=p.id,
                    kind=kind,
                    modality=modality,
                    question=q.question,
                    answer=q.ground_truth,
                    image=p.image if modality is Modality.MULTIMODAL else None,
                    meta={"type": q.type},
                )
            )
    return items


def profile_train_pairs(p: MLLMUProfile) -> list[TrainPair]:
    """Fine-tuning / unlearning pairs: ``metadata`` when present, else the row's own QA pair.

    The image goes with every pair, as in MLLMU-Bench's fine-tuning code.
    """
    if p.metadata is not None:
        pairs = p.metadata
    else:
        pairs = [(p.question, p.answer)] if p.question and p.answer else []
    return [TrainPair(p.id, question, answer, p.image) for question, answer in pairs]
