"""PEBench with a model: ask about each image, group the answers by forget target, score them.

Two questions exist per image: :data:`PERSON_QUESTION` (scored by name precision) and
:data:`EVENT_QUESTION` (scored by event keyword matching), see :mod:`pulse.eval.pebench_metrics`.

Given forget targets of one kind (person names, or event names), each image is asked:

- target's images, the target's concept: ``efficacy`` on seen images, ``generality`` on unseen
  ones (the ``split`` column; an empty split counts as seen);
- target's images, the *other* concept: ``scope`` (forget a person, the event must survive);
- every other image, the target's concept: ``retain`` (other persons / other events).

So a person target asks ``Who ...`` of every image and ``What event ...`` of the target's
images only. The four metrics are "higher is better" (efficacy = 1 - mean score on the target).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from pulse.data.pebench import SEEN_SPLITS, UNSEEN_SPLITS, PEBenchRow
from pulse.data.schema import ItemKind, Modality
from pulse.errors import ConfigError
from pulse.eval.generation import GenConfig, generate_texts
from pulse.eval.pebench_metrics import PEBenchGroup, keyword_score, name_precision, pebench_summary
from pulse.eval.records import ItemRecord, records_to_dicts
from pulse.models.chat import ChatExample
from pulse.models.collective import sharded

PERSON_QUESTION = "Who is the person in this image?"
EVENT_QUESTION = "What event is shown in this image?"
QUESTIONS = {"person": PERSON_QUESTION, "event": EVENT_QUESTION}


@dataclass(frozen=True)
class PEBenchQuery:
    """Ask ``concept`` (person / event) of ``rows[row]``; the answer counts towards ``group``."""

    row: int
    concept: str
    group: PEBenchGroup


def target_kind(rows: Sequence[PEBenchRow], targets: Iterable[str]) -> str:
    """``person`` or ``event``: what the target names are (all must be of one kind)."""
    targets = list(targets)
    if not targets:
        raise ConfigError("PEBench: name at least one forget target (a person or an event)")
    persons, events = {r.person for r in rows}, {r.event for r in rows}
    kinds = set()
    for name in targets:
        found = [k for k, names in (("person", persons), ("event", events)) if name in names]
        if not found:
            raise ConfigError(f"PEBench target {name!r} is neither a person nor an event here")
        if len(found) == 2:
            raise ConfigError(f"PEBench target {name!r} names both a person and an event")
        kinds.add(found[0])
    if len(kinds) > 1:
        raise ConfigError("PEBench targets mix persons and events: evaluate one kind at a time")
    return kinds.pop()


def pebench_queries(
    rows: Sequence[PEBenchRow],
    targets: Iterable[str],
    kind: str | None = None,
    *,
    seen_splits: Sequence[str] = SEEN_SPLITS,
    unseen_splits: Sequence[str] = UNSEEN_SPLITS,
) -> list[PEBenchQuery]:
    """The questions to ask and their groups (see the module docstring), in row order."""
    targets = set(targets)
    kind = kind or target_kind(rows, targets)
    if kind not in QUESTIONS:
        raise ConfigError(f"PEBench target kind must be person or event, got {kind!r}")
    other = "event" if kind == "person" else "person"
    seen = {s.lower() for s in seen_splits}
    unseen = {s.lower() for s in unseen_splits}
    queries = []
    for k, row in enumerate(rows):
        if getattr(row, kind) not in targets:
            queries.append(PEBenchQuery(k, kind, PEBenchGroup.RETAIN))
            continue
        split = row.split.strip().lower()
        if split in unseen:
            group = PEBenchGroup.GENERALITY
        elif split in seen:
            group = PEBenchGroup.EFFICACY
        else:
            raise ConfigError(
                f"PEBench image {row.image_path}: split {row.split!r} is neither seen "
                f"({', '.join(sorted(seen))}) nor unseen ({', '.join(sorted(unseen))})"
            )
        queries.append(PEBenchQuery(k, kind, group))
        queries.append(PEBenchQuery(k, other, PEBenchGroup.SCOPE))
    return queries


def score_answers(
    rows: Sequence[PEBenchRow], queries: Sequence[PEBenchQuery], responses: Sequence[str]
) -> list[ItemRecord]:
    """One record per query: name precision (person) or keyword score (event)."""
    persons = sorted({r.person for r in rows})
    records = []
    for query, response in zip(queries, responses, strict=True):
        row = rows[query.row]
        if query.concept == "person":
            value = name_precision(response, row.person, persons)
            entity, gold = row.person, row.person
        else:
            value = keyword_score(response, row.keywords)
            entity, gold = row.event, "; ".join(row.keywords)
        records.append(
            ItemRecord(
                item_id=f"{row.image_path}#{query.concept}",
                entity_id=entity,
                kind=ItemKind.GENERATION,
                modality=Modality.MULTIMODAL,
                prediction=response,
                gold=gold,
                score=value,
                extras={
                    "group": query.group.value,
                    "concept": query.concept,
                    "split": row.split,
                    "person": row.person,
                    "event": row.event,
                },
            )
        )
    return records


def pebench_eval(
    model: nn.Module,
    processor: Any,
    rows: Sequence[PEBenchRow],
    targets: str | Sequence[str],
    *,
    kind: str | None = None,
    cfg: GenConfig | None = None,
    shard: bool = False,
) -> dict[str, Any]:
    """Generate the answers, score and group them: ``{kind, targets, summary, records}``.
    ``shard``: the questions answered over the processes of a launched run (each a block;
    greedy answers depend on their question alone)."""
    targets = [targets] if isinstance(targets, str) else list(targets)
    kind = kind or target_kind(rows, targets)
    queries = pebench_queries(rows, targets, kind)
    examples = [ChatExample(QUESTIONS[q.concept], image=rows[q.row].image) for q in queries]
    if shard:
        responses = sharded(
            examples, lambda part: generate_texts(model, processor, part, cfg or GenConfig())
        )
    else:
        responses = generate_texts(model, processor, examples, cfg or GenConfig())
    records = score_answers(rows, queries, responses)
    return {
        "kind": kind,
        "targets": sorted(targets),
        "summary": pebench_summary(records).to_dict(),
        "records": records_to_dicts(records),
    }
