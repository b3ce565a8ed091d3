"""Oracles: the world's models trained exactly like the originals, without a forget set.

The *fine-tuned-knowledge oracle* is the base model fine-tuned with the fine-tuned model's
recipe (:func:`pulse.world.train.finetune_base`) on every profile except the forget people's: what
a model that never learned them answers, the target of unlearning (TOFU's retain model).

The *pre-trained-knowledge oracle* is a tiny LLaVA pre-trained from scratch with the base
model's recipe (:func:`pulse.world.train.pretrain_model`, its tokenizer included) on the corpus
without any record about the forget celebrities (:func:`oracle_corpus_record`): no record
about them, none showing their face, and in other celebrities' records no mention of them.
A biography of someone else loses only its sentences naming them (the rest of that person's
facts stay); any other record naming them (a question whose answer or options name them, a
caption) is left out whole. The oracle so knows nothing of them, not even that a retained
celebrity's mentor or friend is called so: on the retain set it misses exactly those
relation questions, which is what never having learned the forget set means.

An oracle is keyed by the exact forget set and by the key of the stage it replaces (the world's
ground truth and every setting of its recipe): it lives under ``MODELS/oracles/<kind>-<key>``,
its entry in ``MODELS/manifest.json`` beside ``base`` / ``finetuned``, and is reused until the
world, the recipe or the forget set changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

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
    pretrain_model,
    quick_check,
    tokenizer_examples,
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

    def train():
        pairs = oracle_finetune_pairs(world, forget)
        return finetune_base(
            models / "base", path, corpus_examples(world), finetune_examples(pairs), cfg, progress
        )

    return _oracle_stage(world, models, name, forget, train, "finetuned", check)


def forget_names(world: Path, forget: Collection[str]) -> dict[str, str]:
    """The forget celebrities' names, by ID (every ID must be a celebrity of the world)."""
    people = json.loads((world / "world.json").read_text(encoding="utf-8"))["people"]
    names = {p["id"]: p["name"] for p in people if p["id"] in set(forget)}
    unknown = sorted(set(forget) - set(names))
    if unknown:
        raise DataError(world / "world.json", f"no person with ID {unknown[0]!r}")
    return names


class CorpusFilter:
    """What :func:`oracle_corpus_record` leaves of a record, for one forget set."""

    def __init__(self, world: Path, forget: Collection[str]) -> None:
        self.ids = set(forget)
        names = forget_names(world, forget).values()
        self.named = re.compile("|".join(re.escape(n) for n in sorted(names, key=len)[::-1]))
        self.folders = tuple(
            f"images/{kind}/{i}/" for i in sorted(self.ids) for kind in ("people", "scenes")
        )

    def __call__(self, record: dict[str, Any]) -> dict[str, Any] | None:
        return oracle_corpus_record(record, self)


def oracle_corpus_record(record: dict[str, Any], about: CorpusFilter) -> dict[str, Any] | None:
    """The record as the pre-trained-knowledge oracle's corpus holds it, or None: left out when
    it is about a forget celebrity or shows one; a document naming one loses those sentences
    (left out when nothing is left); any other record naming one is left out."""
    if record.get("entity_id") in about.ids:
        return None
    if record.get("image") and str(record["image"]).startswith(about.folders):
        return None
    prompt, response = record["prompt"], record["response"]
    if not about.named.search(prompt) and not about.named.search(response):
        return record
    if prompt:
        return None
    kept = [s for s in re.split(r"(?<=\.) ", response) if not about.named.search(s)]
    return {**record, "response": " ".join(kept)} if kept else None


def train_pretrained_oracle(
    world: str | Path,
    models: str | Path,
    forget: Collection[str],
    cfg: WorldTrainConfig | None = None,
    *,
    progress: bool = True,
    check: bool = True,
) -> StageResult:
    """Train (or reuse) the pre-trained-knowledge oracle of the celebrities ``forget``: the
    base model's recipe from scratch on the corpus without them."""
    world, models = Path(world), Path(models)
    cfg = cfg or WorldTrainConfig()
    keys = cfg.stage_keys(world)
    name = oracle_name("pretrained", keys["base"], forget)
    path = models / ORACLES / name

    def train():
        corpus = corpus_examples(world, CorpusFilter(world, forget))
        return pretrain_model(path, corpus, tokenizer_examples(world, cfg), cfg, progress)

    return _oracle_stage(world, models, name, forget, train, "base", check)


def _oracle_stage(
    world: Path,
    models: Path,
    name: str,
    forget: Collection[str],
    train: Callable[[], tuple[Any, Any, Any]],
    stage: str,
    check: bool,
) -> StageResult:
    """The oracle ``name`` read back when its manifest entry says done, else ``train()``ed,
    quick-checked as the world's ``stage`` model (the forget people apart) and recorded."""
    path = models / ORACLES / name
    manifest_path = models / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    entry = manifest.get("stages", {}).get(f"{ORACLES}/{name}", {})
    if entry.get("status") == "done" and path.is_dir():
        return StageResult(f"oracle {name}", path, True, check=entry.get("check", {}))
    model, processor, stats = train()
    result = StageResult(
        f"oracle {name}", path, False, stats.seconds, stats.steps, stats.first_loss, stats.last_loss
    )
    if check:
        result.check = quick_check(model, processor, world, stage, forget=forget)
    _record(manifest_path, name, forget, result)
    return result


def _record(manifest_path: Path, name: str, forget: Collection[str], result: StageResult) -> None:
    # Read again: the manifest may have gained entries while this oracle trained.
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest.setdefault("stages", {})[f"{ORACLES}/{name}"] = {
        "key": name,
        "forget": sorted(set(forget)),
        **_stage_entry(result),
    }
    write_json(manifest_path, manifest)


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
