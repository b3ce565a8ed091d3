"""General capability on an MMBench-format TSV: score every row, then CircularEval.

Every row (rotation copies included) is one multiple-choice item with the common MMBench prompt
(hint line, question, ``A. text`` options, the instruction). The ``letter`` and ``option_text``
scorers read the model's scores; ``generate`` answers greedily and extracts the letter without a
judge. ``mllmu`` has no meaning here (its few-shot pool is people), so it runs as ``generate``.

Reported: circular and vanilla accuracy overall, per ``category`` and per ``l2-category`` (see
:mod:`pulse.eval.circular`), the circular verdict of every question, and one record per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn

from pulse.data.mmbench import MMBenchRow, row_item
from pulse.eval.circular import Breakdown, CircularRow, circular_eval
from pulse.eval.encodings import EncodingCache
from pulse.eval.mcq import MCQConfig, score_mcq
from pulse.eval.records import ItemRecord, Tally, records_from_dicts, records_to_dicts

# One verdict per question id (CircularEval: every rotation right; vanilla: rotation 0 right).
Verdicts = dict[str, float]


@dataclass(frozen=True)
class GeneralResult:
    """General capability of one model state: circular and vanilla accuracy overall, their
    tallies per ``category`` / ``l2-category`` (``{name: {circular, vanilla}}``, a vanilla
    tally ``None`` where a question's rotation 0 is missing), each question's verdicts and one
    record per row. ``to_dict`` is the JSON ``pulse eval`` writes; a run directory keeps it
    without the per-row records (:meth:`summary`)."""

    scorer: str
    circular: Tally
    vanilla: Tally
    categories: dict[str, dict[str, Any]] = field(default_factory=dict)
    l2: dict[str, dict[str, Any]] = field(default_factory=dict)
    questions: Verdicts = field(default_factory=dict)
    vanilla_questions: Verdicts = field(default_factory=dict)
    records: list[ItemRecord] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Everything but the per-row records and the l2 breakdown."""
        return {
            "scorer": self.scorer,
            "circular": self.circular.to_dict(),
            "vanilla": self.vanilla.to_dict(),
            "categories": self.categories,
            "questions": self.questions,
            "vanilla_questions": self.vanilla_questions,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "l2": self.l2,
            "records": records_to_dicts(self.records),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GeneralResult:
        """Also what earlier versions stored (no per-question verdicts: empty)."""
        return cls(
            scorer=str(data.get("scorer", "")),
            circular=Tally.from_dict(data["circular"]),
            vanilla=Tally.from_dict(data["vanilla"]),
            categories=dict(data.get("categories") or {}),
            l2=dict(data.get("l2") or {}),
            questions=dict(data.get("questions") or {}),
            vanilla_questions=dict(data.get("vanilla_questions") or {}),
            records=records_from_dicts(data.get("records") or []),
        )


def mmbench_scorer(scorer: str) -> str:
    """The scorer MMBench rows are scored with when the MCQ task uses ``scorer``."""
    return "generate" if scorer == "mllmu" else scorer


def evaluate_mmbench(
    model: nn.Module,
    processor: Any,
    rows: Sequence[MMBenchRow],
    cfg: MCQConfig | None = None,
    *,
    cache: EncodingCache | None = None,
    shard: bool = False,
) -> GeneralResult:
    """Score every row, then CircularEval (see :class:`GeneralResult`). ``cache``: encodings
    kept for the next model scored on ``rows``; ``shard``: the rows scored over the processes
    of a launched run (see ``score_mcq``)."""
    cfg = cfg or MCQConfig()
    cfg = replace(cfg, scorer=mmbench_scorer(cfg.scorer))
    items = [row_item(r) for r in rows]
    records = score_mcq(model, processor, items, cfg, cache=cache, shard=shard)
    result = circular_eval(
        CircularRow(r.index, bool(rec.correct), r.category or None, r.l2_category or None)
        for r, rec in zip(rows, records, strict=True)
    )
    return GeneralResult(
        scorer=cfg.scorer,
        circular=result.circular.overall,
        vanilla=result.vanilla.overall,
        categories=_groups(result.circular, result.vanilla, "by_category"),
        l2=_groups(result.circular, result.vanilla, "by_l2_category"),
        questions={str(q): v for q, v in result.questions.items()},
        vanilla_questions={str(q): v for q, v in result.vanilla_questions.items()},
        records=list(records),
    )


def _groups(circular: Breakdown, vanilla: Breakdown, attr: str) -> dict[str, dict[str, Any]]:
    circ, van = getattr(circular, attr), getattr(vanilla, attr)
    return {
        name: {
            "circular": circ[name].to_dict(),
            # A question whose rotation 0 is missing has no vanilla verdict.
            "vanilla": van[name].to_dict() if name in van else None,
        }
        for name in sorted(circ)
    }
