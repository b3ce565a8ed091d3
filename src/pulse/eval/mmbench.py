"""General capability on an MMBench-format TSV: score every row, then CircularEval.

Every row (rotation copies included) is one multiple-choice item with the common MMBench prompt
(hint line, question, ``A. text`` options, the instruction). The ``letter`` and ``option_text``
scorers read the model's scores; ``generate`` answers greedily and extracts the letter without a
judge. ``mllmu`` has no meaning here (its few-shot pool is people), so it runs as ``generate``.

Reported: circular and vanilla accuracy overall, per ``category`` and per ``l2-category`` (see
:mod:`pulse.eval.circular`), the circular verdict of every question, and one record per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from torch import nn

from pulse.data.mmbench import MMBenchRow, row_item
from pulse.eval.circular import Breakdown, CircularRow, circular_eval
from pulse.eval.encodings import EncodingCache
from pulse.eval.mcq import MCQConfig, score_mcq
from pulse.eval.records import records_to_dicts


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
) -> dict[str, Any]:
    """``{scorer, circular, vanilla, categories, l2, questions, vanilla_questions, records}``,
    JSON-ready (``questions`` / ``vanilla_questions``: each question's verdict).
    ``cache``: encodings kept for the next model scored on ``rows`` (see ``score_mcq``).

    ``circular`` / ``vanilla`` are overall tallies (``n``, ``total``, ``mean``); ``categories``
    and ``l2`` map each name to ``{circular, vanilla}`` tallies.
    """
    cfg = cfg or MCQConfig()
    cfg = replace(cfg, scorer=mmbench_scorer(cfg.scorer))
    records = score_mcq(model, processor, [row_item(r) for r in rows], cfg, cache=cache)
    result = circular_eval(
        CircularRow(r.index, bool(rec.correct), r.category or None, r.l2_category or None)
        for r, rec in zip(rows, records, strict=True)
    )
    return {
        "scorer": cfg.scorer,
        "circular": result.circular.overall.to_dict(),
        "vanilla": result.vanilla.overall.to_dict(),
        "categories": _groups(result.circular, result.vanilla, "by_category"),
        "l2": _groups(result.circular, result.vanilla, "by_l2_category"),
        "questions": {str(q): v for q, v in result.questions.items()},
        "vanilla_questions": {str(q): v for q, v in result.vanilla_questions.items()},
        "records": records_to_dicts(records),
    }


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
