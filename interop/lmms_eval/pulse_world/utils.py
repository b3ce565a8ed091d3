"""lmms-eval document functions for pulse's synthetic world (its MLLMU-Bench parquet and its
MMBench-format TSV), so an exported pulse model is scored by lmms-eval as any other.

MLLMU-Bench rows are people; :func:`mllmu_docs` turns each person's multiple-choice questions
into one document each (image questions with the person's picture, text questions without);
the tasks keep the image questions (:func:`mllmu_image_docs`).
A generated answer is scored twice: ``letter_acc`` reads the first option letter standing alone
(the published protocol's reading), ``option_acc`` whether the answer names the correct option's
text and no other (a model that answers with the option's words, as the embedded tiny model
does). Plain Python, no pulse import: the folder works wherever lmms-eval runs.
"""

from __future__ import annotations

import base64
import io
import json
import re

import datasets
from PIL import Image

LETTERS = ("A", "B", "C", "D")
MLLMU_INSTRUCTION = "Just give ONE letter representing the answer directly."
MMBENCH_INSTRUCTION = "Answer with the option's letter from the given choices directly."
_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "modality": datasets.Value("string"),
        "question": datasets.Value("string"),
        "hint": datasets.Value("string"),
        "letters": datasets.List(datasets.Value("string")),
        "options": datasets.List(datasets.Value("string")),
        "answer": datasets.Value("string"),
        "image": datasets.Image(),
    }
)


def _parsed(value):
    return json.loads(value) if isinstance(value, str) else value


def _filled(options: dict) -> list[tuple[str, str]]:
    return [(k, str(options[k]).strip()) for k in LETTERS if _present(options.get(k))]


def _present(value) -> bool:
    return value is not None and str(value).strip().lower() not in ("", "nan", "none")


def _letter(answer: str, options: list[tuple[str, str]]) -> str:
    """The answer as a letter (MLLMU-Bench copies give a letter or, rarely, the option text)."""
    answer = str(answer).strip()
    if answer in LETTERS:
        return answer
    for letter, text in options:
        if text == answer:
            return letter
    return answer


def mllmu_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    """One document per multiple-choice question of each person."""
    rows = []
    for person in dataset:
        task = _parsed(person["Classification_Task"]) or {}
        image = person.get("image")
        if isinstance(image, dict):  # the plain {bytes, path} form of an older file
            image = Image.open(io.BytesIO(image["bytes"]))
        for modality, key in (
            ("image", "Image_Textual_Questions"),
            ("text", "Pure_Text_Questions"),
        ):
            for question in _parsed(task.get(key)) or []:
                options = _filled(_parsed(question["Options"]))
                rows.append(
                    {
                        "id": str(person["ID"]),
                        "modality": modality,
                        "question": question["Question"],
                        "hint": "",
                        "letters": [k for k, _ in options],
                        "options": [v for _, v in options],
                        "answer": _letter(question["Correct_Answer"], options),
                        "image": image if modality == "image" else None,
                    }
                )
    return datasets.Dataset.from_list(rows, features=_FEATURES)


def mllmu_image_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    """The questions asked with the person's picture. lmms-eval 0.7.3's ``llava_hf`` cannot
    answer a text-only document under transformers 5 (it passes an empty image list, CLIP fails
    on it, and the answer is scored as an empty string), so the tasks keep these only."""
    return mllmu_docs(dataset).filter(lambda doc: doc["modality"] == "image")


def mmbench_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    """MMBench TSV rows (base64 images) in the same document layout."""
    rows = []
    for row in dataset:
        options = _filled(row)
        image = Image.open(io.BytesIO(base64.b64decode(row["image"]))) if row["image"] else None
        rows.append(
            {
                "id": str(row["index"]),
                "modality": "image" if image is not None else "text",
                "question": row["question"],
                "hint": str(row["hint"]) if _present(row.get("hint")) else "",
                "letters": [k for k, _ in options],
                "options": [v for _, v in options],
                "answer": str(row["answer"]).strip(),
                "image": image,
            }
        )
    return datasets.Dataset.from_list(rows, features=_FEATURES)


def doc_to_visual(doc: dict) -> list:
    return [doc["image"].convert("RGB")] if doc["image"] is not None else []


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    """The published prompt: ``layout: mllmu`` gives MLLMU-Bench's (``A: text`` and its
    instruction), ``layout: mmbench`` MMBench's (the hint, ``A. text``, its instruction)."""
    layout = (lmms_eval_specific_kwargs or {}).get("layout", "mmbench")
    sep, instruction = (
        (": ", MLLMU_INSTRUCTION) if layout == "mllmu" else (". ", MMBENCH_INSTRUCTION)
    )
    lines = [doc["hint"]] if doc["hint"] else []
    lines.append(doc["question"])
    lines += [f"{k}{sep}{v}" for k, v in zip(doc["letters"], doc["options"], strict=True)]
    lines.append(instruction)
    return "\n".join(lines)


def doc_to_target(doc: dict) -> str:
    return doc["answer"]


def _gold(doc: dict) -> int:
    return doc["letters"].index(doc["answer"]) if doc["answer"] in doc["letters"] else -1


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def first_letter(text: str, letters) -> str | None:
    """The first option letter standing alone in ``text`` (``B``, ``(B)``, ``B.``, ``B:``)."""
    match = re.search(r"(?<![A-Za-z])([A-D])(?![A-Za-z])", text)
    return match.group(1) if match and match.group(1) in letters else None


def named_option(text: str, options) -> int | None:
    """The index of the one option whose text the answer is, starts with or contains alone."""
    said = _norm(text)
    if not said:
        return None
    exact = [k for k, option in enumerate(options) if _norm(option) == said]
    if exact:
        return exact[0]
    inside = [k for k, option in enumerate(options) if _norm(option) and _norm(option) in said]
    return inside[0] if len(inside) == 1 else None


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    answer = results[0].strip()
    gold = _gold(doc)
    return {
        "letter_acc": float(first_letter(answer, doc["letters"]) == doc["answer"]),
        "option_acc": float(gold >= 0 and named_option(answer, doc["options"]) == gold),
    }
