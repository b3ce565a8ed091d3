"""Per-item result records and their aggregation.

Every metric stores one :class:`ItemRecord` per question, so breakdowns (per modality, per entity,
KS tests, AUCs) are computed from stored items and never need the model again. A record's
*value* is ``1.0 / 0.0`` for a verdict (``correct``) and the ``score`` otherwise (e.g. ROUGE-L);
an aggregate is the plain mean of values, with its count.

Everything serialises to plain JSON types, with a fixed key order: records sorted by item id,
aggregate keys sorted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulse.data.schema import ItemKind, Modality


@dataclass(frozen=True)
class Tally:
    """``n`` values summing to ``total``; ``mean = total / n`` (None when ``n == 0``)."""

    n: int = 0
    total: float = 0.0

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "total": self.total, "mean": self.mean}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tally:
        return cls(n=int(data["n"]), total=float(data["total"]))


@dataclass(frozen=True)
class ItemRecord:
    """The outcome of one question. At least one of ``correct`` / ``score`` is set."""

    item_id: str
    entity_id: str
    kind: ItemKind
    modality: Modality
    prediction: str | None
    gold: str
    correct: bool | None = None
    score: float | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Accept the enums' string values too (records read back from JSON).
        object.__setattr__(self, "kind", ItemKind(self.kind))
        object.__setattr__(self, "modality", Modality(self.modality))
        if self.correct is None and self.score is None:
            raise ValueError(f"record {self.item_id}: needs a verdict (correct) or a score")

    @property
    def value(self) -> float:
        """``correct`` as 1.0 / 0.0 when set, else ``score``."""
        if self.correct is not None:
            return 1.0 if self.correct else 0.0
        assert self.score is not None
        return float(self.score)

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "entity_id": self.entity_id,
            "kind": self.kind.value,
            "modality": self.modality.value,
            "prediction": self.prediction,
            "gold": self.gold,
            "correct": self.correct,
            "score": self.score,
            "extras": {k: self.extras[k] for k in sorted(self.extras)},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ItemRecord:
        return cls(
            item_id=str(data["item_id"]),
            entity_id=str(data["entity_id"]),
            kind=ItemKind(data["kind"]),
            modality=Modality(data["modality"]),
            prediction=data.get("prediction"),
            gold=str(data["gold"]),
            correct=data.get("correct"),
            score=data.get("score"),
            extras=dict(data.get("extras") or {}),
        )


def tally(records: Iterable[ItemRecord]) -> Tally:
    n, total = 0, 0.0
    for record in records:
        n += 1
        total += record.value
    return Tally(n, total)


def tally_by(records: Iterable[ItemRecord], key: Callable[[ItemRecord], str]) -> dict[str, Tally]:
    """One :class:`Tally` per group, keys sorted."""
    groups: dict[str, list[ItemRecord]] = {}
    for record in records:
        groups.setdefault(key(record), []).append(record)
    return {k: tally(groups[k]) for k in sorted(groups)}


@dataclass(frozen=True)
class Summary:
    """Mean value overall, per modality, per entity and per (entity, modality)."""

    overall: Tally
    by_modality: dict[str, Tally]
    by_entity: dict[str, Tally]
    by_entity_modality: dict[str, dict[str, Tally]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_dict(),
            "by_modality": {k: t.to_dict() for k, t in self.by_modality.items()},
            "by_entity": {k: t.to_dict() for k, t in self.by_entity.items()},
            "by_entity_modality": {
                e: {m: t.to_dict() for m, t in per.items()}
                for e, per in self.by_entity_modality.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Summary:
        def tallies(d: Mapping[str, Any]) -> dict[str, Tally]:
            return {k: Tally.from_dict(d[k]) for k in sorted(d)}

        return cls(
            overall=Tally.from_dict(data["overall"]),
            by_modality=tallies(data["by_modality"]),
            by_entity=tallies(data["by_entity"]),
            by_entity_modality={
                e: tallies(data["by_entity_modality"][e])
                for e in sorted(data["by_entity_modality"])
            },
        )


def summarise(records: Sequence[ItemRecord]) -> Summary:
    """Aggregate records of one kind (mixing MCQ accuracy with ROUGE means is an error)."""
    check_unique(records)
    kinds = {r.kind for r in records}
    if len(kinds) > 1:
        raise ValueError(f"cannot average records of different kinds: {sorted(kinds)}")
    per_entity: dict[str, list[ItemRecord]] = {}
    for record in records:
        per_entity.setdefault(record.entity_id, []).append(record)
    return Summary(
        overall=tally(records),
        by_modality=tally_by(records, _modality),
        by_entity={e: tally(per_entity[e]) for e in sorted(per_entity)},
        by_entity_modality={e: tally_by(per_entity[e], _modality) for e in sorted(per_entity)},
    )


def _modality(record: ItemRecord) -> str:
    return record.modality.value


def check_unique(records: Iterable[ItemRecord]) -> None:
    """Raise if an item id occurs twice (it would be counted twice)."""
    seen: set[str] = set()
    for record in records:
        if record.item_id in seen:
            raise ValueError(f"item {record.item_id!r} has two records")
        seen.add(record.item_id)


def records_to_dicts(records: Iterable[ItemRecord]) -> list[dict[str, Any]]:
    """JSON-ready rows, sorted by item id."""
    ordered = sorted(records, key=lambda r: r.item_id)
    check_unique(ordered)
    return [r.to_dict() for r in ordered]


def records_from_dicts(rows: Iterable[Mapping[str, Any]]) -> list[ItemRecord]:
    return [ItemRecord.from_dict(row) for row in rows]
