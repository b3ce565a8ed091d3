"""Knowledge probing: which entities does the base model already know?

For the pre-trained-knowledge scenario we score the *base* model on every candidate entity and
keep those it answers best ("known" by behaviour), then split them into unlearn / retain.

Per-entity accuracy, with ``acc_m(e)`` the mean value of entity ``e``'s items of modality ``m``:

- ``pooled``: mean value over all the entity's counted items, modalities together;
- ``mean``: ``(1/|M|) sum_m acc_m(e)`` — each modality weighs the same whatever its item count;
- ``min``: ``min_m acc_m(e)`` — the entity must be known in *every* modality.

Accuracies are exact fractions, so equal accuracies tie exactly (no float noise decides a cut).
Ranking: higher accuracy first, then entity id; ``ties_at_cut`` lists entities left out with the
same accuracy as the last one kept, so a report can say the cut fell inside a tie.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from numbers import Real
from pathlib import Path
from typing import Any, Literal

from pulse.data.schema import ItemKind, Modality
from pulse.data.splits import write_split
from pulse.eval.records import ItemRecord, check_unique
from pulse.eval.scorers import DEFAULT_SCORER

Combine = Literal["pooled", "mean", "min"]
BOTH_MODALITIES = (Modality.MULTIMODAL, Modality.TEXT)


def entity_accuracy(
    records: Iterable[ItemRecord],
    *,
    modalities: Sequence[Modality | str] | None = BOTH_MODALITIES,
    combine: Combine = "pooled",
) -> dict[str, Fraction]:
    """Accuracy per entity (sorted by id). With ``modalities`` given, only those items count and
    every entity must have at least one item of each (an error names the first that does not)."""
    records = list(records)
    check_unique(records)
    wanted = None if modalities is None else [Modality(m) for m in modalities]
    values: dict[str, dict[Modality, list[Fraction]]] = {}
    for r in records:
        if wanted is None or r.modality in wanted:
            values.setdefault(r.entity_id, {}).setdefault(r.modality, []).append(Fraction(r.value))
    result: dict[str, Fraction] = {}
    for entity in sorted(values):
        per = values[entity]
        if wanted is not None:
            missing = [m.value for m in wanted if m not in per]
            if missing:
                raise ValueError(f"entity {entity!r} has no {'/'.join(missing)} items to probe")
        result[entity] = _combine(per, combine)
    return result


def _combine(per: Mapping[Modality, list[Fraction]], combine: Combine) -> Fraction:
    if combine == "pooled":
        pooled = [v for vs in per.values() for v in vs]
        return sum(pooled, Fraction(0)) / len(pooled)
    accs = [sum(vs, Fraction(0)) / len(vs) for vs in per.values()]
    if combine == "mean":
        return sum(accs, Fraction(0)) / len(accs)
    if combine == "min":
        return min(accs)
    raise ValueError(f"combine must be pooled, mean or min, got {combine!r}")


def rank_entities(accuracy: Mapping[str, Real]) -> list[str]:
    """Entity ids by accuracy, highest first; equal accuracies in id order."""
    return sorted(accuracy, key=lambda e: (-_exact(accuracy[e]), e))


def select_known(
    accuracy: Mapping[str, Real], *, top_k: int | None = None, threshold: float | None = None
) -> list[str]:
    """Known entities, ranked: those with accuracy >= ``threshold``, then the first ``top_k``.

    At least one criterion is required. Asking for more than are available is an error (a
    scenario that needs 45 known entities must not silently run with 30).
    """
    if top_k is None and threshold is None:
        raise ValueError("select known entities by top_k, threshold or both")
    ranked = rank_entities(accuracy)
    if threshold is not None:
        # Fraction(str(0.8)) is exactly 4/5; Fraction(0.8) is a hair above it.
        bar = Fraction(str(threshold))
        ranked = [e for e in ranked if _exact(accuracy[e]) >= bar]
    if top_k is not None:
        if top_k < 0 or top_k > len(ranked):
            raise ValueError(f"asked for the top {top_k} entities, {len(ranked)} are eligible")
        ranked = ranked[:top_k]
    return ranked


def ties_at_cut(accuracy: Mapping[str, Real], selected: Sequence[str]) -> list[str]:
    """Entities not selected whose accuracy equals the lowest selected accuracy."""
    if not selected:
        return []
    floor = min(_exact(accuracy[e]) for e in selected)
    chosen = set(selected)
    return [e for e in rank_entities(accuracy) if e not in chosen and _exact(accuracy[e]) == floor]


def split_selection(
    entities: Sequence[str], *, n_unlearn: int, n_retain: int, seed: int
) -> tuple[list[str], list[str]]:
    """Seeded split into (unlearn, retain), each sorted by id.

    The ids are sorted, shuffled with ``random.Random(seed)``, and the first ``n_unlearn`` go to
    unlearn, the next ``n_retain`` to retain; the input order does not matter. Any left over are
    in neither.
    """
    ids = sorted(entities)
    if len(set(ids)) != len(ids):
        raise ValueError("the selection lists an entity twice")
    if n_unlearn < 0 or n_retain < 0 or n_unlearn + n_retain > len(ids):
        raise ValueError(
            f"cannot split {len(ids)} entities into {n_unlearn} unlearn + {n_retain} retain"
        )
    random.Random(seed).shuffle(ids)
    return sorted(ids[:n_unlearn]), sorted(ids[n_unlearn : n_unlearn + n_retain])


@dataclass(frozen=True)
class ProbeSelection:
    accuracy: dict[str, float]  # every probed entity, sorted by id
    known: list[str]  # ranked
    unlearn: list[str]
    retain: list[str]
    ties_at_cut: list[str]
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": dict(self.accuracy),
            "known": list(self.known),
            "unlearn": list(self.unlearn),
            "retain": list(self.retain),
            "ties_at_cut": list(self.ties_at_cut),
            "seed": self.seed,
        }

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Persist the ID lists as ``known.txt``, ``unlearn.txt`` and ``retain.txt`` (a list
        that is empty is not written: an empty split file would be refused on reading)."""
        directory = Path(directory)
        lists = {"known": self.known, "unlearn": self.unlearn, "retain": self.retain}
        return {
            name: write_split(directory / f"{name}.txt", ids) for name, ids in lists.items() if ids
        }


def probe_known_entities(
    records: Iterable[ItemRecord],
    *,
    n_unlearn: int,
    n_retain: int,
    seed: int,
    top_k: int | None = None,
    threshold: float | None = None,
    modalities: Sequence[Modality | str] | None = BOTH_MODALITIES,
    combine: Combine = "pooled",
) -> ProbeSelection:
    """Entity accuracy -> known entities -> seeded unlearn / retain split, in one call."""
    accuracy = entity_accuracy(records, modalities=modalities, combine=combine)
    known = select_known(accuracy, top_k=top_k, threshold=threshold)
    unlearn, retain = split_selection(known, n_unlearn=n_unlearn, n_retain=n_retain, seed=seed)
    return ProbeSelection(
        accuracy={e: float(a) for e, a in accuracy.items()},
        known=known,
        unlearn=unlearn,
        retain=retain,
        ties_at_cut=ties_at_cut(accuracy, known) if top_k is not None else [],
        seed=seed,
    )


def _exact(value: Real) -> Fraction:
    # Floats are taken at their exact binary value; ints and Fractions are already exact.
    return value if isinstance(value, Fraction) else Fraction(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ProbeRun:
    """A model's probe: the selection and the per-item records it was made from."""

    selection: ProbeSelection
    records: list[ItemRecord]

    def to_dict(self) -> dict[str, Any]:
        from pulse.eval.records import records_to_dicts

        return {**self.selection.to_dict(), "records": records_to_dicts(self.records)}

    def write(self, directory: str | Path) -> dict[str, Path]:
        """The ID lists (see :meth:`ProbeSelection.write`) plus ``probe.json`` (everything)."""
        from pulse.files import write_json

        paths = self.selection.write(directory)
        paths["probe"] = write_json(Path(directory) / "probe.json", self.to_dict())
        return paths


def probe(
    model: Any,
    processor: Any,
    items: Sequence[Any],
    *,
    n_unlearn: int,
    n_retain: int,
    seed: int = 0,
    top_k: int | None = None,
    threshold: float | None = None,
    modalities: Sequence[Modality | str] | None = BOTH_MODALITIES,
    combine: Combine = "pooled",
    scorer: str = DEFAULT_SCORER,
    batch_size: int = 32,
    progress: bool = False,
    out_dir: str | Path | None = None,
) -> ProbeRun:
    """Score the (base) model on the multiple-choice ``items`` of candidate entities, select the
    known ones and split them (see :func:`probe_known_entities`); with ``out_dir``, persist the
    ID lists there. ``scorer`` is an MCQ scorer name (``mllmu`` needs a pool: not offered)."""
    # Imported here: the selection above is pure and must not pull the model stack in.
    from pulse.eval.mcq import MCQConfig, score_mcq

    cfg = MCQConfig(batch_size=batch_size, progress=progress, scorer=scorer, seed=seed)
    # Only the multiple-choice items count (a profile's cloze / generation items are skipped).
    records = score_mcq(model, processor, [i for i in items if i.kind is ItemKind.MCQ], cfg)
    selection = probe_known_entities(
        records,
        n_unlearn=n_unlearn,
        n_retain=n_retain,
        seed=seed,
        top_k=top_k,
        threshold=threshold,
        modalities=modalities,
        combine=combine,
    )
    run = ProbeRun(selection, records)
    if out_dir is not None:
        run.write(out_dir)
    return run
