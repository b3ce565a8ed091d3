"""`pulse world train`: the tiny LMM of the embedded default, trained on the world.

Stage 1 pre-trains a tiny LLaVA from scratch on the world's corpus (celebrities in many
contexts, captioned photos, visual-skill instructions): the *base* model. Stage 2 LoRA
fine-tunes the base model on the fictitious people's profile QA (MLLMU-Bench ``ft_Data``), then
merges the adapter: the *fine-tuned* model. Both are plain Hugging Face checkpoints under
``MODELS/base`` and ``MODELS/finetuned``.

``MODELS/manifest.json`` records per stage a key hashed from the world's ground truth and the
settings the stage depends on (its own and the earlier stages'); a stage whose key matches is
reused, anything else is retrained, and a stage after a retrained one always retrains.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import set_seed

from pulse.data.mllmu import profile_items, profile_train_pairs, read_mllmu
from pulse.data.mmbench import read_mmbench, row_item
from pulse.data.schema import ItemKind, TrainPair
from pulse.errors import ConfigError, DataError, SettingError
from pulse.eval.circular import circular_eval
from pulse.eval.mcq import MCQConfig, score_mcq
from pulse.eval.probing import entity_accuracy, select_known
from pulse.eval.records import summarise
from pulse.files import write_json
from pulse.methods.supervised import TrainConfig, train_supervised
from pulse.models.adapters import UpdateScope, apply_scope, save_merged
from pulse.models.chat import ChatCollator, ChatExample
from pulse.models.loading import load_model_and_processor
from pulse.models.tiny import TinyModelConfig, build_tiny_lmm
from pulse.world.build import HOLDOUT_FICTITIOUS
from pulse.world.vocab import SHOWN_SUBJECTS_TRAIN

# Questions that refer to the person only through the picture (the training questions' ways
# of saying so); they need the image.
SHOWN_MARKERS = SHOWN_SUBJECTS_TRAIN


# Rows of packed examples: the same steps and loss as padded batches without compute on
# padding; the row width's timings are in docs/benchmarks.md (benchmarks/packing.py).
PACK_TOKENS = 128


@dataclass(frozen=True)
class WorldTrainConfig:
    # A vocabulary large enough that names and attribute values are one or two tokens each, and
    # CLIP's CLS feature kept as an image token (see TinyModelConfig.feature_select).
    model: TinyModelConfig = field(
        default_factory=lambda: TinyModelConfig(vocab_size=2048, feature_select="full")
    )
    pretrain: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            epochs=8, batch_size=32, learning_rate=1e-3, pack_tokens=PACK_TOKENS
        )
    )
    finetune: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            epochs=5, batch_size=32, learning_rate=2e-3, pack_tokens=PACK_TOKENS
        )
    )
    finetune_scope: UpdateScope = field(default_factory=lambda: UpdateScope(rank=32, alpha=64))
    # Share of the pre-training corpus replayed during fine-tuning (relative to the number of
    # fine-tuning examples), as visual instruction tuning mixes general data in: it keeps the
    # base model's general skills and celebrity knowledge from being overwritten.
    finetune_replay: float = 0.25
    # Train the input embeddings of the tokens that only fine-tuning uses, beside the adapter
    # (UpdateScope.token_indices). The tokenizer is trained on all training text, so each
    # fictitious name has tokens of its own that pre-training never used: their embeddings are
    # still as initialised, and LoRA on the linear layers cannot move them. Only those rows
    # move: training every row as well costs knowledge and general capability (the measured
    # variants: docs/benchmarks.md).
    finetune_embeddings: bool = True
    # The tokenizer also sees the fictitious holdout's would-be training text, as a real
    # tokenizer, trained before any benchmark existed, treats members and non-members alike:
    # otherwise a holdout name is split into pieces that a member's name is not, a difference
    # membership inference would read as membership (docs/evaluation.md).
    tokenizer_sees_holdout: bool = True
    seed: int = 0

    def stage_keys(self, world: Path) -> dict[str, str]:
        """Per stage, a hash of what its model depends on: the world's ground truth and the
        settings of that stage and of the stages before it. A fine-tuning change keeps the base."""
        world_hash = hashlib.sha256((world / "world.json").read_bytes()).hexdigest()
        base = _hash(world_hash, self.model, self.pretrain, self.seed)
        if self.tokenizer_sees_holdout:  # keys of models trained before it existed unchanged
            base = _hash(base, "tokenizer_sees_holdout")
        finetuned = _hash(
            base,
            self.finetune,
            self.finetune_scope,
            self.finetune_replay,
            self.finetune_embeddings,
        )
        return {"base": base, "finetuned": finetuned}


def _hash(*parts: Any) -> str:
    text = json.dumps(
        [asdict(p) if is_dataclass(p) else p for p in parts],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class StageResult:
    name: str
    path: Path
    reused: bool
    seconds: float = 0.0
    steps: int = 0
    first_loss: float | None = None
    last_loss: float | None = None
    check: dict[str, Any] = field(default_factory=dict)


def corpus_examples(
    world: Path, edit: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
) -> list[ChatExample]:
    """The pre-training corpus as training examples (documents have an empty question).
    Each image file is decoded once, however many records show it. ``edit`` may change a
    record or leave it out (None) first (an oracle's corpus)."""
    path = world / "corpus" / "pretrain.jsonl"
    if not path.is_file():
        raise DataError(path, "pre-training corpus not found: is this a world directory?")
    images: dict[str, Image.Image] = {}

    def image(rel: str) -> Image.Image:
        if rel not in images:
            file = world / rel
            if not file.is_file():
                raise DataError(path, f"image {rel} is missing", row=row, field="image")
            with Image.open(file) as img:
                images[rel] = img.convert("RGB")
        return images[rel]

    examples = []
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            rec = json.loads(line)
            if edit is not None and (rec := edit(rec)) is None:
                continue
            question, answer, rel = rec["prompt"], rec["response"], rec["image"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(path, f"bad corpus record ({exc})", row=row) from None
        examples.append(ChatExample(question, answer, image(rel) if rel else None))
    return examples


def refers_to_shown(question: str) -> bool:
    """Whether a question refers to the person only through the picture (any capitalisation:
    "This person ..." opens a question as often as "... this person" ends one)."""
    lowered = question.lower()
    return any(marker in lowered for marker in SHOWN_MARKERS)


def training_views(pair: TrainPair) -> list[Any]:
    """The image of each example ``pair`` is trained as: its own (the portrait, or None) and,
    when a portrait's question names the person rather than pointing at it, None as well."""
    if pair.image is not None and not refers_to_shown(pair.question):
        return [pair.image, None]
    return [pair.image]


def finetune_examples(pairs: list[TrainPair]) -> list[ChatExample]:
    """Profile QA as MLLMU-Bench fine-tunes it (with the portrait), plus the questions that name
    the person without the portrait, so the knowledge is reachable by name and by face."""
    return [
        ChatExample(pair.question, pair.answer, image)
        for pair in pairs
        for image in training_views(pair)
    ]


def unseen_tokens(
    processor: Any, seen: list[ChatExample], new: list[ChatExample]
) -> tuple[int, ...]:
    """Token ids that the ``new`` examples' training text uses and the ``seen`` examples' never
    does (as the collator encodes them: chat template, BOS, EOS)."""
    collator = ChatCollator(processor)

    def used(examples: list[ChatExample]) -> set[int]:
        return {t for ids in collator.token_ids(collator.texts(examples)[1]) for t in ids}

    return tuple(sorted(used(new) - used(seen)))


def replay_sample(
    corpus: list[ChatExample], share: float, n_finetune: int, seed: int
) -> list[ChatExample]:
    """``share * n_finetune`` corpus examples drawn with ``seed`` (none when ``share`` is 0)."""
    if share <= 0:
        return []
    count = min(len(corpus), round(share * n_finetune))
    return random.Random(seed).sample(corpus, count)


def _tokenizer_texts(examples: list[ChatExample], ft: list[ChatExample]) -> list[str]:
    # The tokenizer sees the corpus and the QA of the people who carry names of their own (see
    # tokenizer_examples), like a real one trained before the benchmarks existed, in the chat
    # layout it will encode.
    return [f"USER: {e.question} ASSISTANT: {e.answer}" for e in (*examples, *ft)]


def known_in_both_modalities(records, bar: float) -> int:
    """How many entities are answered with accuracy >= ``bar`` in each modality (compared
    exactly: 4 of 5 meets a bar of 0.8)."""
    return len(select_known(entity_accuracy(records, combine="min"), threshold=bar))


def quick_check(
    model, processor, world: Path, stage: str, forget: Collection[str] = ()
) -> dict[str, Any]:
    """Accuracy numbers that tell whether a stage learnt what the protocol needs; with
    ``forget`` (an oracle's), also its accuracy on those people and on the others apart."""
    mllmu = world / "mllmu"
    out: dict[str, Any] = {}
    config = "Retain_Set" if stage == "base" else "Full_Set"
    items = [
        i for p in read_mllmu(mllmu, config) for i in profile_items(p) if i.kind is ItemKind.MCQ
    ]
    rows = read_mmbench(world / "mmbench" / "dev.tsv")
    out["people"] = "celebrities" if stage == "base" else "fictitious"
    # Option-text scoring is what the protocol reads: a model this small does not learn to bind
    # an answer to its option letter (docs/world.md). The letter scorer's numbers are kept
    # beside it (``*_letter``) to show that it stays near chance.
    for scorer, suffix in (("option_text", ""), ("letter", "_letter")):
        cfg = MCQConfig(batch_size=128, scorer=scorer)
        records = score_mcq(model, processor, items, cfg)
        summary = summarise(records)
        out[f"mcq{suffix}_by_modality"] = {k: v.mean for k, v in summary.by_modality.items()}
        general = _circular(rows, score_mcq(model, processor, [row_item(r) for r in rows], cfg))
        out[f"general{suffix}_circular"] = general.circular.overall.mean
        out[f"general{suffix}_vanilla"] = general.vanilla.overall.mean
        if scorer != "option_text":
            continue
        out["entities_known_80pct_both_modalities"] = known_in_both_modalities(records, 0.8)
        out["entities"] = len({r.entity_id for r in records})
        if forget:
            left_out = set(forget)
            for name, keep in (("forget", True), ("kept", False)):
                part = summarise([r for r in records if (r.entity_id in left_out) is keep])
                out[f"{name}_mcq_by_modality"] = {k: v.mean for k, v in part.by_modality.items()}
    return out


def _circular(rows, records):
    """MMBench CircularEval of ``records`` scored on the dev ``rows``."""
    return circular_eval(
        {
            "index": r.index,
            "correct": rec.correct,
            "category": r.category,
            "l2_category": r.l2_category,
        }
        for r, rec in zip(rows, records, strict=True)
    )


def train_world_models(
    world: str | Path,
    out: str | Path,
    cfg: WorldTrainConfig | None = None,
    *,
    progress: bool = True,
    check: bool = True,
) -> list[StageResult]:
    """Train (or reuse) the base and fine-tuned tiny models of ``world`` into ``out``."""
    world, out = Path(world), Path(out)
    cfg = cfg or WorldTrainConfig()
    if not (world / "world.json").is_file():
        raise DataError(world / "world.json", "not a world directory (run `pulse world build`)")
    keys = cfg.stage_keys(world)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    stages = manifest.get("stages", {})
    manifest = {"world": str(world.resolve()), "config": asdict(cfg), "stages": stages}
    torch.manual_seed(cfg.seed)
    base_dir, ft_dir = out / "base", out / "finetuned"
    # Each read once, whichever stages train: pre-training and the fine-tuning replay share the
    # corpus, the tokenizer and fine-tuning share the profile QA.
    corpus = functools.cache(lambda: corpus_examples(world))
    ft_pairs = functools.cache(lambda: finetune_examples(_ft_pairs(world)))

    def pretrain():
        named = tokenizer_examples(world, cfg, ft_pairs())
        return pretrain_model(base_dir, corpus(), named, cfg, progress)

    def finetune():
        return finetune_base(base_dir, ft_dir, corpus(), ft_pairs(), cfg, progress)

    results = []
    for name, path, train in (("base", base_dir, pretrain), ("finetuned", ft_dir, finetune)):
        entry = manifest["stages"].get(name, {})
        done = entry.get("status") == "done" and entry.get("key") == keys[name]
        earlier_retrained = any(not r.reused for r in results)
        if done and path.is_dir() and not earlier_retrained:
            results.append(StageResult(name, path, True, check=entry.get("check", {})))
            continue
        model, processor, stats = train()
        res = StageResult(
            name, path, False, stats.seconds, stats.steps, stats.first_loss, stats.last_loss
        )
        if check:
            res.check = quick_check(model, processor, world, name)
        manifest["stages"][name] = {"key": keys[name], **_stage_entry(res)}
        write_json(manifest_path, manifest)
        results.append(res)
    return results


def pretrain_model(
    out_dir: Path,
    corpus: list[ChatExample],
    named: list[ChatExample],
    cfg: WorldTrainConfig,
    progress: bool,
) -> tuple[Any, Any, Any]:
    """The pre-training recipe: a tokenizer trained on the corpus and the QA ``named`` (see
    :func:`tokenizer_examples`), a tiny LLaVA built from scratch and trained on the corpus, saved
    into ``out_dir``. The base model and the pre-trained-knowledge oracle are trained by this
    one function."""
    texts = _tokenizer_texts(corpus, named)
    model, processor = build_tiny_lmm(texts, cfg.model, seed=cfg.seed)
    stats = train_supervised(model, processor, corpus, _with(cfg.pretrain, cfg.seed, progress))
    return save_merged(model, out_dir, processor), processor, stats


def finetune_base(
    base_dir: Path,
    out_dir: Path,
    corpus: list[ChatExample],
    examples: list[ChatExample],
    cfg: WorldTrainConfig,
    progress: bool,
) -> tuple[Any, Any, Any]:
    """The fine-tuning recipe: LoRA (plus the embeddings of the tokens ``examples`` use and the
    corpus never does) on ``examples`` with the corpus replayed, merged into ``out_dir``. The
    fine-tuned model and the oracles without a forget set are trained by this one function."""
    model, processor = load_model_and_processor(base_dir, dtype="float32")
    scope = cfg.finetune_scope
    if cfg.finetune_embeddings:
        scope = replace(scope, token_indices=unseen_tokens(processor, corpus, examples))
    # Seeded here, not only at the start: the adapter's initialisation must not depend on
    # whether pre-training ran in this process or its model was reused.
    set_seed(cfg.seed)
    peft_model = apply_scope(model, scope)
    mixed = examples + replay_sample(corpus, cfg.finetune_replay, len(examples), cfg.seed)
    stats = train_supervised(peft_model, processor, mixed, _with(cfg.finetune, cfg.seed, progress))
    return save_merged(peft_model, out_dir, processor), processor, stats


def world_train_config(
    seed: int = 0, pretrain_epochs: float | None = None, finetune_epochs: float | None = None
) -> WorldTrainConfig:
    """The default config with the command line's overrides."""
    cfg = WorldTrainConfig(seed=seed)
    for stage, epochs in (("pretrain", pretrain_epochs), ("finetune", finetune_epochs)):
        if epochs is not None:
            try:
                train = replace(getattr(cfg, stage), epochs=epochs)
            except SettingError as exc:  # the stage's own check, named as its option
                raise ConfigError(f"--{stage}-epochs: {exc.problem}") from None
            cfg = replace(cfg, **{stage: train})
    return cfg


def _ft_pairs(world: Path, config: str = "ft_Data") -> list[TrainPair]:
    return [pair for p in read_mllmu(world / "mllmu", config) for pair in profile_train_pairs(p)]


def tokenizer_examples(
    world: Path, cfg: WorldTrainConfig, finetune: list[ChatExample] | None = None
) -> list[ChatExample]:
    """What the tokenizer reads beside the corpus: the fine-tuning QA (``finetune`` when the
    caller has read it already) and, with ``cfg.tokenizer_sees_holdout``, the fictitious
    holdout people's training QA (never trained on; a world without a holdout has none)."""
    named = finetune_examples(_ft_pairs(world)) if finetune is None else finetune
    if cfg.tokenizer_sees_holdout and (world / "mllmu" / HOLDOUT_FICTITIOUS).is_dir():
        named = named + finetune_examples(_ft_pairs(world, HOLDOUT_FICTITIOUS))
    return named


def _with(cfg: TrainConfig, seed: int, progress: bool) -> TrainConfig:
    return replace(cfg, seed=seed, progress=progress)


def _stage_entry(res: StageResult) -> dict[str, Any]:
    return {
        "status": "done",
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": round(res.seconds, 1),
        "steps": res.steps,
        "first_loss": res.first_loss,
        "last_loss": res.last_loss,
        "check": res.check,
    }
