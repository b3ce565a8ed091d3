"""MMBench CircularEval.

MMBench stores each question once per rotation of its options: row ``index`` is rotation
``index // 1_000_000`` of question ``index % 1_000_000``. Under CircularEval a question scores 1
only if every rotation present in the table was answered correctly:

    circular(q) = all(correct(r) for r in rows of q)

and accuracy is the mean of ``circular(q)`` over questions, overall, per ``category`` and per
``l2-category``. *Vanilla* accuracy is the plain mean over rotation-0 rows (``index < 1_000_000``);
a question whose rotation 0 is missing is in the circular score but not in the vanilla one.

A question's categories come from its lowest-index row; rows of one question that disagree are an
error. Rows without a category are counted overall but in no per-category group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pulse.eval.options import is_blank
from pulse.eval.records import Tally

ROTATION_STRIDE = 1_000_000


@dataclass(frozen=True)
class CircularRow:
    index: int
    correct: bool
    category: str | None = None
    l2_category: str | None = None

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> CircularRow:
        """Accept the TSV's spellings ``l2-category`` / ``L2-category`` as well."""
        l2 = next((row[k] for k in ("l2_category", "l2-category", "L2-category") if k in row), None)
        return cls(int(row["index"]), bool(row["correct"]), _name(row.get("category")), _name(l2))


@dataclass(frozen=True)
class Breakdown:
    overall: Tally
    by_category: dict[str, Tally]
    by_l2_category: dict[str, Tally]

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_dict(),
            "by_category": {k: t.to_dict() for k, t in self.by_category.items()},
            "by_l2_category": {k: t.to_dict() for k, t in self.by_l2_category.items()},
        }


@dataclass(frozen=True)
class CircularResult:
    circular: Breakdown
    vanilla: Breakdown
    questions: dict[int, bool]  # question (base index) -> circular verdict, sorted
    rotations: dict[int, int]  # question -> number of rotations present, sorted
    # question -> its rotation 0's verdict (vanilla), for questions whose rotation 0 is present
    vanilla_questions: dict[int, bool]

    def to_dict(self) -> dict[str, Any]:
        return {
            "circular": self.circular.to_dict(),
            "vanilla": self.vanilla.to_dict(),
            # JSON object keys are strings.
            "questions": {str(q): v for q, v in self.questions.items()},
            "rotations": {str(q): v for q, v in self.rotations.items()},
            "vanilla_questions": {str(q): v for q, v in self.vanilla_questions.items()},
        }


def circular_eval(rows: Iterable[CircularRow | Mapping[str, Any]]) -> CircularResult:
    by_question: dict[int, list[CircularRow]] = {}
    seen: set[int] = set()
    for raw in rows:
        row = raw if isinstance(raw, CircularRow) else CircularRow.from_mapping(raw)
        if row.index < 0:
            raise ValueError(f"row index {row.index}: expected a non-negative integer")
        if row.index in seen:
            raise ValueError(f"row index {row.index} appears twice")
        seen.add(row.index)
        by_question.setdefault(row.index % ROTATION_STRIDE, []).append(row)

    circular: list[tuple[bool, str | None, str | None]] = []
    vanilla: list[tuple[bool, str | None, str | None]] = []
    questions: dict[int, bool] = {}
    vanilla_questions: dict[int, bool] = {}
    rotations: dict[int, int] = {}
    for q in sorted(by_question):
        group = sorted(by_question[q], key=lambda r: r.index)
        first = group[0]
        for other in group[1:]:
            if (other.category, other.l2_category) != (first.category, first.l2_category):
                raise ValueError(
                    f"question {q}: rows {first.index} and {other.index} disagree on category"
                )
        verdict = all(r.correct for r in group)
        questions[q] = verdict
        rotations[q] = len(group)
        circular.append((verdict, first.category, first.l2_category))
        if first.index < ROTATION_STRIDE:
            vanilla.append((first.correct, first.category, first.l2_category))
            vanilla_questions[q] = first.correct
    return CircularResult(
        _breakdown(circular), _breakdown(vanilla), questions, rotations, vanilla_questions
    )


def _breakdown(entries: list[tuple[bool, str | None, str | None]]) -> Breakdown:
    def tallies(pick: int) -> dict[str, Tally]:
        groups: dict[str, list[bool]] = {}
        for entry in entries:
            name = entry[pick]
            if name is not None:
                groups.setdefault(name, []).append(entry[0])
        return {k: Tally(len(v), float(sum(v))) for k, v in sorted(groups.items())}

    overall = Tally(len(entries), float(sum(e[0] for e in entries)))
    return Breakdown(overall, tallies(1), tallies(2))


def _name(value: object) -> str | None:
    # pandas leaves NaN in empty category cells.
    return None if is_blank(value) else str(value)
