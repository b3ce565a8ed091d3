"""Oracles: the world's models trained exactly like the originals, without a forget set.

The *fine-tuned-knowledge oracle* is the base model fine-tuned with the fine-tuned model's
recipe (:func:`pulse.world.train.finetune_base`) on every profile except the forget people's: what
a model that never learned them answers, the target of unlearning (TOFU's retain model).

An oracle is keyed by the exact forget set and by the key of the stage it replaces (the world's
ground truth and every setting of its recipe): it lives under ``MODELS/oracles/<kind>-<key>``,
its entry in ``MODELS/manifest.json`` beside ``base`` / ``finetuned``, and is reused until the
world, the recipe or the forget set changes.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from pathlib import Path

from pulse.data.schema import TrainPair
from pulse.errors import DataError
from pulse.files import write_json
from pulse.world.train import (
    StageResult,
    WorldTrainConfig,
    _ft_pairs,
    _hash,
    _stage_entry,
    corpus_examples,
    finetune_base,
    finetune_examples,
    quick_check,
)

ORACLES = "oracles"


def oracle_name(kind: str, stage_key: str, forget: Collection[str]) -> str:
    """``<kind>-<key>``: the key hashes the replaced stage's key and the sorted forget set."""
    return f"{kind}-{_hash(stage_key, 'oracle', sorted(set(forget)))}"


def without_people(pairs: Sequence[TrainPair], forget: Collection[str]) -> list[TrainPair]:
    """The pairs about anyone but the ``forget`` people."""
    left_out = set(forget)
    return [pair for pair in pairs if pair.entity_id not in left_out]


def oracle_finetune_pairs(world: Path, forget: Collection[str]) -> list[TrainPair]:
    """The fine-tuning data of the fine-tuned-knowledge oracle: ``ft_Data`` without the forget
    people's profiles."""
    pairs = _ft_pairs(world)
    unknown = set(forget) - {pair.entity_id for pair in pairs}
    if unknown:
        raise DataError(
            world / "mllmu" / "ft_Data", f"no fine-tuning profile with ID {sorted(unknown)[0]!r}"
        )
    return without_people(pairs, forget)


def train_finetuned_oracle(
    world: str | Path,
    models: str | Path,
    forget: Collection[str],
    cfg: WorldTrainConfig | None = None,
    *,
    progress: bool = True,
    check: bool = True,
) -> StageResult:
    """Train (or reuse) the fine-tuned-knowledge oracle of ``forget`` from ``models/base``,
    which must be the base model of ``cfg`` (trained by :func:`train_world_models`)."""
    world, models = Path(world), Path(models)
    cfg = cfg or WorldTrainConfig()
    keys = cfg.stage_keys(world)
    manifest_path = models / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    base = manifest.get("stages", {}).get("base", {})
    if base.get("status") != "done" or base.get("key") != keys["base"]:
        raise DataError(
            models / "base", "not the base model of this world and recipe: train it first"
        )
    name = oracle_name("finetuned", keys["finetuned"], forget)
    path = models / ORACLES / name
    entry = manifest["stages"].get(f"{ORACLES}/{name}", {})
    if entry.get("status") == "done" and path.is_dir():
        return StageResult(f"oracle {name}", path, True, check=entry.get("check", {}))
    pairs = oracle_finetune_pairs(world, forget)
    model, processor, stats = finetune_base(
        models / "base", path, corpus_examples(world), finetune_examples(pairs), cfg, progress
    )
    result = StageResult(
        f"oracle {name}", path, False, stats.seconds, stats.steps, stats.first_loss, stats.last_loss
    )
    if check:
        result.check = quick_check(model, processor, world, "finetuned", forget=forget)
    # Read again: the manifest may have gained entries while this oracle trained.
    manifest = json.loads(manifest_path.read_text())
    manifest["stages"][f"{ORACLES}/{name}"] = {
        "key": name,
        "forget": sorted(set(forget)),
        **_stage_entry(result),
    }
    write_json(manifest_path, manifest)
    return result


def describe(result: StageResult, forget: Collection[str]) -> str:
    """One line: where the oracle is, how it was obtained and its quick check."""
    state = "reused" if result.reused else f"trained in {result.seconds:.0f}s"
    line = f"{result.name}: {result.path} ({state}; {len(set(forget))} people left out)"
    check = result.check
    if not check:
        return line

    def pct(part: str) -> str:
        by = check.get(f"{part}_mcq_by_modality", {})
        return " / ".join(
            "-" if by.get(m) is None else f"{100 * by[m]:.1f}%" for m in ("multimodal", "text")
        )

    general = check.get("general_circular")
    return (
        f"{line}\n  quick check (multimodal / text-only): left-out people {pct('forget')}, "
        f"kept people {pct('kept')}, general "
        f"{'-' if general is None else f'{100 * general:.1f}%'}"
    )
