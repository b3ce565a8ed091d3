"""One unlearning request: the library function behind ``pulse unlearn``.

Output directory::

    OUT/result.json   status (ok / diverged with step and value), loss curves, timings,
                      trainable parameters per component, and what the adapter applies on
    OUT/adapter/      the trained adapter; written only when the request finished (status ok)
    OUT/edit/         instead of adapter/, for a training-free method that edits weights
                      (MANU): the zeroed neurons (:mod:`pulse.models.edits`)
    OUT/logs/         the logging integrations' files (TensorBoard runs when installed)
    OUT/checkpoints/  training checkpoints while the request runs (``train.checkpoint_every``):
                      a request started again in the same folder resumes from the newest sound
                      one of the same request; removed when the request finishes

``result.json`` is removed when a request starts and written last, so a directory that has one
holds a finished request (the adapter is written atomically before it).

Reference model. ``reference="initial"``: an ``--adapter`` is trained further and its disabled
state (the model it applies on) stays the reference across sequential requests.
``reference="previous"``: the ``--adapter`` is merged into the weights and a new adapter
starts, so the reference is the model after the previous request. Its adapter then applies on
the model *with the earlier adapters merged*; ``result.json`` lists them under
``applies_on.merged`` and :func:`load_unlearned` rebuilds the model from that.

A weight edit (``OUT/edit/``) is sealed like an adapter (``edit_sha256``) and applied wherever
an adapter would be merged. It cannot be trained further: a request given one as ``--adapter``
applies it to the weights and starts a new adapter whatever ``reference`` says (the edited model
is then its reference). An edit request needs no checkpoints: it takes seconds, and one that was
interrupted runs again from the start.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from torch import nn
from transformers import set_seed

from pulse.data.mllmu import is_config_name, list_configs, profile_train_pairs, read_mllmu
from pulse.data.schema import TrainPair
from pulse.data.splits import read_split
from pulse.errors import ConfigError, DataError, ModelError
from pulse.files import digest_problem, folder_digests, read_json, write_json
from pulse.methods.base import MethodContext
from pulse.methods.batches import UnlearnData
from pulse.methods.checkpoints import CheckpointPlan, remove_checkpoints
from pulse.methods.points import EvalPoints, PointPlan
from pulse.methods.registry import get_method
from pulse.methods.trainer import LoopConfig, LoopResult, train_method
from pulse.models.adapters import (
    UpdateScope,
    apply_scope,
    base_model,
    enable_checkpointing,
    load_adapter,
    merge,
    save_adapter,
    trainable_parameters,
)
from pulse.models.edits import apply_edit, apply_state, is_edit_dir, save_edit
from pulse.models.loading import load_model, load_model_and_processor, load_processor
from pulse.models.packing import packable
from pulse.models.settings import UNLEARN_DEFAULTS, TrainSettings, checkpoint_schedule

RESULT_FILE = "result.json"
ADAPTER_DIR = "adapter"
EDIT_DIR = "edit"
CHECKPOINT_DIR = "checkpoints"
# Where the training pairs of listed IDs are looked up, in order (then any other config).
PAIR_CONFIGS = ("Full_Set", "ft_Data", "Retain_Set")
Reference = Literal["initial", "previous"]


@dataclasses.dataclass
class RequestResult:
    status: str  # "ok" or "diverged"
    out_dir: Path
    method: str
    params: dict[str, Any]
    steps: int
    seconds: float
    diverged: dict[str, Any] | None
    history: list[dict[str, float]]
    trainable: dict[str, int]
    record: dict[str, Any]  # everything written to result.json
    total_seconds: float | None = None  # load, train and save

    @classmethod
    def read(cls, out_dir: str | Path) -> RequestResult:
        """The result a finished request wrote to ``out_dir``; a damaged ``result.json`` (or,
        status ok, an adapter that is not the one it recorded) is a one-line DataError."""
        out = Path(out_dir)
        path = out / RESULT_FILE
        record = read_json(path)
        if not isinstance(record, dict):
            raise DataError(path, "not a request result (expected a JSON object)")
        for name, kind in (("status", str), ("method", str)):
            if not isinstance(record.get(name), kind):
                raise DataError(path, f"expected a {kind.__name__}", field=name)
        if record["status"] == "ok":
            applies = record.get("applies_on")
            if not (
                isinstance(applies, dict)
                and isinstance(applies.get("model"), str)
                and isinstance(applies.get("merged"), list)
            ):
                raise DataError(path, "expected {model, merged}", field="applies_on")
            if record.get("edit"):
                state, problem = out / EDIT_DIR, edit_problem(out / EDIT_DIR, record)
            else:
                state = out / ADAPTER_DIR
                problem = adapter_problem(state, record.get("adapter_sha256"))
            if problem is not None:
                raise DataError(state, problem)
        return cls(
            status=record["status"],
            out_dir=out,
            method=record["method"],
            params=record.get("params") or {},
            steps=record.get("steps", 0),
            seconds=record.get("seconds", 0.0),
            diverged=record.get("diverged"),
            history=record.get("history") or [],
            trainable=record.get("trainable_params") or {},
            record=record,
            total_seconds=record.get("total_seconds"),
        )

    @classmethod
    def finished(cls, out_dir: str | Path) -> RequestResult | None:
        """The result of a finished request in ``out_dir``, or ``None`` when there is none or
        what is there is damaged (said in one line: the request then runs again)."""
        if not (Path(out_dir) / RESULT_FILE).is_file():
            return None
        try:
            found = cls.read(out_dir)
        except DataError as exc:
            print(f"pulse: {exc}; the request runs again", file=sys.stderr, flush=True)
            return None
        remove_checkpoints(Path(out_dir) / CHECKPOINT_DIR)  # a kill right after it finished
        return found

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def adapter_dir(self) -> Path | None:
        """The request's own state: its adapter, or its weight edit (a training-free method)."""
        return own_state(self.out_dir, self.record) if self.ok else None


def resolve_ids(
    spec: str | Path | Sequence[str] | None, data_dir: str | Path
) -> tuple[list[str], str | None]:
    """IDs from a split file path, an MLLMU-Bench config name (its profiles) or a comma list.
    Returns the IDs and, for a config name, the config."""
    if spec is None:
        return [], None
    if not isinstance(spec, str | Path):
        return _unique(list(spec), "the ID list"), None
    text = str(spec).strip()
    if not text:
        return [], None
    if Path(text).is_file():
        return read_split(text), None
    root = Path(data_dir)
    if is_config_name(text):  # forget_10: a config, never an ID
        configs = _configs(root)
        if text not in configs:
            raise DataError(root, f"no config {text!r} here; configs found: {', '.join(configs)}")
        return [p.id for p in read_mllmu(root, text)], text
    return _unique([s.strip() for s in text.split(",") if s.strip()], repr(text)), None


def _configs(root: Path) -> list[str]:
    """The MLLMU-Bench configs under ``root``; none is one line saying what was expected."""
    configs = list_configs(root)
    if not configs:
        world = root / "mllmu"
        hint = f"; a world directory keeps them in {world}" if world.is_dir() else ""
        raise DataError(root, f"no MLLMU-Bench configs here (folders of parquet files){hint}")
    return configs


def _unique(ids: list[str], where: str) -> list[str]:
    seen: set[str] = set()
    for entry in ids:
        if entry in seen:
            raise ConfigError(f"{where}: ID {entry!r} is listed twice")
        seen.add(entry)
    return ids


def train_pairs(
    data_dir: str | Path, ids: Sequence[str], config: str | None = None
) -> list[TrainPair]:
    """The training pairs (``metadata``, else the row's own QA pair) of ``ids``, in ID order.
    Looked up in ``config`` when given, else in Full_Set, ft_Data, Retain_Set, then the rest."""
    if not ids:
        return []
    root = Path(data_dir)
    present = _configs(root)
    order = [config] if config else [c for c in PAIR_CONFIGS if c in present]
    order += [c for c in present if c not in order and not config]
    found: dict[str, list[TrainPair]] = {}
    wanted = set(ids)
    for name in order:
        for profile in read_mllmu(root, name):
            if profile.id in wanted and profile.id not in found:
                found[profile.id] = profile_train_pairs(profile)
        if wanted <= found.keys():
            break
    for entry in ids:
        if entry not in found:
            raise DataError(root, f"ID {entry!r} is in none of the configs {', '.join(order)}")
        if not found[entry]:
            raise DataError(
                root, f"ID {entry!r} has no training pairs (metadata or question/answer)"
            )
    return [pair for entry in ids for pair in found[entry]]


def sample_per_entity(
    pairs: Sequence[TrainPair], limit: int, seed: int, *, first: int | None = None
) -> list[TrainPair]:
    """At most ``limit`` pairs of each entity, in their original order. The sample is seeded by
    the entity's ID, so a person gets the same pairs in every request that unlearns them (one
    batch or the sequential subsets). With ``first`` (below ``limit``), only the first
    ``first`` pairs drawn of that sample: a smaller sample that lies inside it (a draw of
    ``first`` under the same seed need not: ``random.sample`` may take another algorithm)."""
    by_entity: dict[str, list[int]] = {}
    for index, pair in enumerate(pairs):
        by_entity.setdefault(pair.entity_id, []).append(index)
    kept: set[int] = set()
    for entity, indices in by_entity.items():
        draw = random.Random(f"{seed}:{entity}")
        if len(indices) > limit:
            indices = draw.sample(indices, limit)[:first]
        elif first is not None and len(indices) > first:
            indices = draw.sample(indices, first)  # every pair is in the sample of ``limit``
        kept.update(indices)
    return [pair for index, pair in enumerate(pairs) if index in kept]


def _merged_under(adapter: Path) -> list[str]:
    """The adapters a request output's adapter applies on top of (from its result.json)."""
    result = adapter.parent / RESULT_FILE
    if adapter.name not in (ADAPTER_DIR, EDIT_DIR) or not result.is_file():
        return []
    record = RequestResult.read(adapter.parent).record
    return [str(p) for p in applies_on(adapter.parent, record)[1]]


def _relative(path: str, out: Path) -> str:
    """``path`` relative to the request's folder ``out``."""
    return os.path.relpath(Path(path).resolve(), out.resolve())


def applies_on(out: Path, record: dict[str, Any]) -> tuple[Path, list[Path]]:
    """The model a finished request applies on and the states merged under its own. Each is
    recorded absolute and relative to the request's folder: the absolute path while it
    exists, else the relative one when that exists (a run directory moved or copied as a
    whole: its requests' chains and models moved with it), else the absolute (its loader
    says it is missing)."""
    applies = record["applies_on"]
    relative = applies.get("relative") or {}

    def located(absolute: str, rel: str | None) -> Path:
        if Path(absolute).exists() or rel is None:
            return Path(absolute)
        moved = (out / rel).resolve()
        return moved if moved.exists() else Path(absolute)

    rels = relative.get("merged")
    if not isinstance(rels, list) or len(rels) != len(applies["merged"]):
        rels = [None] * len(applies["merged"])  # recorded before relative paths were
    return located(applies["model"], relative.get("model")), [
        located(a, r) for a, r in zip(applies["merged"], rels, strict=True)
    ]


def _with_adapters(
    model: nn.Module,
    adapter: Path | None,
    reference: Reference,
    scope: UpdateScope,
    gradient_checkpointing: bool,
) -> tuple[nn.Module, list[str]]:
    """The trainable model and the adapters merged under its adapter."""
    if adapter is None:
        return apply_scope(model, scope, gradient_checkpointing=gradient_checkpointing), []
    merged = _merged_under(adapter)
    for earlier in merged:
        model = apply_state(model, earlier)
    if reference == "initial" and not is_edit_dir(adapter):
        if gradient_checkpointing:
            enable_checkpointing(model)
        return load_adapter(model, adapter, trainable=True), merged
    model = apply_state(model, adapter)
    model = apply_scope(model, scope, gradient_checkpointing=gradient_checkpointing)
    return model, [*merged, str(adapter.resolve())]


def check_disjoint(
    forget: Sequence[str], retain: Sequence[str], keys: tuple[str, str] = ("--forget", "--retain")
) -> None:
    """One line naming the IDs in both the forget and the retain set (``keys`` name them):
    a person would be trained to be forgotten and retained at once."""
    both = sorted(set(forget) & set(retain))
    if both:
        raise ConfigError(f"IDs both in {keys[0]} and {keys[1]}: {', '.join(both[:5])}")


def run_unlearning(
    model_dir: str | Path,
    data_dir: str | Path,
    forget_ids: str | Path | Sequence[str],
    retain_ids: str | Path | Sequence[str] | None,
    method: str,
    overrides: Mapping[str, Any] | Iterable[str] | None,
    out_dir: str | Path,
    **settings: Any,
) -> RequestResult:
    """Unlearn ``forget_ids`` from the model in ``model_dir`` (plus ``adapter``) with ``method``.

    ``data_dir`` is an MLLMU-Bench root (one folder per config). ``forget_ids`` /
    ``retain_ids``: a split file, a config name or a comma list (see :func:`resolve_ids`).
    ``settings`` are :func:`run_request`'s keyword arguments (``train``, ``seed``, ``adapter``,
    ...). Everything is checked before the model loads.
    """
    get_method(method, overrides)  # an unknown method or parameter fails before reading data
    forget, forget_config = resolve_ids(forget_ids, data_dir)
    retain, retain_config = resolve_ids(retain_ids, data_dir)
    if not forget:
        raise ConfigError("--forget: no IDs to unlearn")
    check_disjoint(forget, retain)
    return run_request(
        model_dir,
        train_pairs(data_dir, forget, forget_config),
        train_pairs(data_dir, retain, retain_config),
        method,
        overrides,
        out_dir,
        forget_ids=forget,
        retain_ids=retain,
        **settings,
    )


def run_request(
    model_dir: str | Path,
    forget_pairs: Sequence[TrainPair],
    retain_pairs: Sequence[TrainPair],
    method: str,
    overrides: Mapping[str, Any] | Iterable[str] | None,
    out_dir: str | Path,
    *,
    train: TrainSettings = UNLEARN_DEFAULTS,
    seed: int = 0,
    forget_ids: Sequence[str] = (),
    retain_ids: Sequence[str] = (),
    adapter: str | Path | None = None,
    reference: Reference = "initial",
    dtype: str = "auto",
    report_to: tuple[str, ...] | None = None,
    progress: bool = True,
    trainer_args: Mapping[str, Any] | None = None,
    points: PointPlan | None = None,
) -> RequestResult:
    """One request on explicit training pairs (any data source: MLLMU-Bench, PEBench, ...),
    trained as ``train`` says under ``seed``.

    ``train.scope`` chooses the parameters that move for a new adapter (an adapter trained
    further keeps its own); ``train.pairs_per_id`` keeps at most that many pairs of each person
    (:func:`sample_per_entity`). ``trainer_args`` go to ``TrainingArguments`` as they are
    (``deepspeed``, ``fsdp``, ``dataloader_num_workers``, ...). ``forget_ids`` / ``retain_ids``
    are recorded. ``points`` evaluates the model along the way (``train.eval_every``,
    :mod:`pulse.methods.points`): the steps evaluated, and where and why it stopped early, are
    recorded as ``eval_steps`` and ``stopped``.
    """
    total_start = time.perf_counter()
    if reference not in ("initial", "previous"):
        raise ConfigError(f"reference: expected initial or previous, got {reference!r}")
    bound = get_method(method, overrides)
    scope = train.scope.update_scope()
    if train.pairs_per_id is not None:
        forget_pairs = sample_per_entity(forget_pairs, train.pairs_per_id, seed)
        retain_pairs = sample_per_entity(retain_pairs, train.pairs_per_id, seed)
    if not forget_pairs:
        raise ConfigError("no forget examples to unlearn")
    if "retain" in bound.requires and not retain_pairs:
        raise ConfigError(f"method {bound.name!r} needs retain data: give --retain")
    adapter_path = Path(adapter) if adapter is not None else None

    model, processor = load_model_and_processor(model_dir, dtype=dtype)
    # A new adapter's initialisation draws from the global generators: seed them here, or the
    # same request would start differently after whatever ran before it (a resumed run).
    set_seed(seed)
    data = UnlearnData(list(forget_pairs), list(retain_pairs), seed=seed)
    if bound.edits:
        model, merged = _under_edit(model, adapter_path)
        out = _open_out(out_dir)
        result, edit = _edit(model, processor, bound, data, train, seed)
        return _finish(out, model, bound, result, edit=edit, total_start=total_start,
                       record=_record(bound, result, merged, model_dir, adapter_path, reference,
                                      seed, train, forget_pairs, retain_pairs, forget_ids,
                                      retain_ids, scope, None))  # fmt: skip
    model, merged = _with_adapters(
        model, adapter_path, reference, scope, train.gradient_checkpointing
    )
    out = _open_out(out_dir)
    loop = LoopConfig.from_settings(
        train,
        seed=seed,
        report_to=report_to,
        progress=progress,
        trainer_args=dict(trainer_args or {}),
    )
    if not packable(base_model(model)):
        # Packing changes the layout, not the loss: a model it cannot serve trains padded.
        loop = dataclasses.replace(loop, pack_tokens=0)
    steps, seconds = checkpoint_schedule(train.checkpoint_every)
    fingerprint = _fingerprint(
        model_dir, adapter_path, reference, bound, train, seed, dtype, forget_pairs, retain_pairs
    )
    plan = CheckpointPlan(out / CHECKPOINT_DIR, fingerprint, steps=steps, seconds=seconds)
    loop = dataclasses.replace(loop, checkpoint=plan)
    along = EvalPoints(points, processor) if points is not None else None
    result = train_method(
        model,
        processor,
        bound,
        data,
        loop,
        output_dir=str(out / "logs"),
        callbacks=[along] if along is not None else (),
    )
    record = _record(bound, result, merged, model_dir, adapter_path, reference, seed, train,
                     forget_pairs, retain_pairs, forget_ids, retain_ids, scope, loop)  # fmt: skip
    record |= {
        "eval_every": points.every if points is not None else None,
        "eval_steps": [s for s in along.steps if s < result.steps] if along else [],
        "stopped": along.stopped if along is not None else None,
    }
    return _finish(out, model, bound, result, record=record, total_start=total_start)


def _open_out(out_dir: str | Path) -> Path:
    """The request's folder, made once the model and the states it starts from have loaded:
    a request refused on its inputs leaves none. An earlier result.json goes first, so the
    folder no longer looks finished."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULT_FILE).unlink(missing_ok=True)
    return out


def _under_edit(model: nn.Module, adapter: Path | None) -> tuple[nn.Module, list[str]]:
    """The model a weight edit is computed on: every earlier state (and ``adapter``) folded
    into the weights; an edit has no adapter of its own to train further."""
    if adapter is None:
        return model, []
    merged = [*_merged_under(adapter), str(adapter.resolve())]
    for earlier in merged:
        model = apply_state(model, earlier)
    return model, merged


def _edit(
    model: nn.Module,
    processor: Any,
    bound: Any,
    data: UnlearnData,
    train: TrainSettings,
    seed: int,
) -> tuple[LoopResult, Any]:
    """Compute a training-free method's weight edit on ``model`` and apply it (in place). In
    a launched run every process computes the same edit on its own device; rank 0 saves it."""
    import torch

    from pulse.models.chat import ChatCollator
    from pulse.models.collective import is_main
    from pulse.models.device import resolve_device

    start = time.perf_counter()
    device = resolve_device()
    model.to(device).eval()
    ctx = MethodContext(
        model=model,
        sources=data.sources(),
        collate=ChatCollator(processor),
        batch_size=train.batch_size,
        device=device,
        seed=seed,
    )
    with torch.no_grad():
        edit = bound.edit(model, ctx)
    apply_edit(model, edit)
    seconds = time.perf_counter() - start
    info = {k: v for k, v in edit.info.items() if isinstance(v, int | float | str | bool)}
    result = LoopResult(
        status="ok", steps=0, seconds=seconds, setup_seconds=0.0, info=info, main_process=is_main()
    )
    return result, edit


def _record(
    bound: Any,
    result: LoopResult,
    merged: list[str],
    model_dir: str | Path,
    adapter_path: Path | None,
    reference: str,
    seed: int,
    train: TrainSettings,
    forget_pairs: Sequence[TrainPair],
    retain_pairs: Sequence[TrainPair],
    forget_ids: Sequence[str],
    retain_ids: Sequence[str],
    scope: UpdateScope,
    loop: LoopConfig | None,
) -> dict[str, Any]:
    """What result.json says about a request (the state's file and digests are added when it
    is written)."""
    return {
        "status": result.status,
        "diverged": result.diverged,
        "method": bound.name,
        "params": bound.params_dict(),
        "forget_ids": list(forget_ids),
        "retain_ids": list(retain_ids),
        "n_forget_examples": len(forget_pairs),
        "n_retain_examples": len(retain_pairs),
        "pairs_per_id": train.pairs_per_id,
        "reference": reference,
        "seed": seed,
        "adapter_in": str(adapter_path.resolve()) if adapter_path else None,
        "adapter": ADAPTER_DIR if result.ok and loop is not None else None,
        "applies_on": {"model": str(Path(model_dir).resolve()), "merged": merged},
        "steps": result.steps,
        "processes": result.processes,
        "seconds": round(result.seconds, 3),
        "setup_seconds": round(result.setup_seconds, 3),
        "seconds_per_step": _median(result.step_seconds),
        "history": result.history,
        "trainable_params": {},
        "info": result.info,
        "loop": {
            k: v
            for k, v in (dataclasses.asdict(loop) if loop is not None else {}).items()
            if k not in ("trainer_args", "checkpoint")
        },
        "checkpoint_every": train.checkpoint_every if loop is not None else None,
        "resumed_from_step": result.resumed_from,
        "scope": dataclasses.asdict(scope) if loop is not None else None,
    }


def _finish(
    out: Path,
    model: nn.Module,
    bound: Any,
    result: LoopResult,
    *,
    record: dict[str, Any],
    total_start: float,
    edit: Any = None,
) -> RequestResult:
    """Write the request's state (adapter or edit) and its result.json (rank 0 only)."""
    trainable = {} if edit is not None else trainable_parameters(model)
    record["trainable_params"] = trainable
    if result.main_process:
        for stale in (ADAPTER_DIR, EDIT_DIR):
            if (out / stale).exists():
                shutil.rmtree(out / stale)  # a stale state must not pass for this result
        if result.ok and edit is not None:
            save_edit(edit, out / EDIT_DIR)
            record["edit"] = EDIT_DIR
            record["edit_sha256"] = folder_digests(out / EDIT_DIR)
        elif result.ok:
            save_adapter(model, out / ADAPTER_DIR)
            record["adapter_sha256"] = adapter_digests(out / ADAPTER_DIR)
        record["total_seconds"] = round(time.perf_counter() - total_start, 3)
        applies = record["applies_on"]
        applies["relative"] = {
            "model": _relative(applies["model"], out),
            "merged": [_relative(p, out) for p in applies["merged"]],
        }
        write_json(out / RESULT_FILE, record)
        remove_checkpoints(out / CHECKPOINT_DIR)  # finished: nothing left to resume
    return RequestResult(
        status=result.status,
        out_dir=out,
        method=bound.name,
        params=record["params"],
        steps=result.steps,
        seconds=result.seconds,
        diverged=result.diverged,
        history=result.history,
        trainable=trainable,
        record=record,
        total_seconds=record.get("total_seconds"),
    )


def _fingerprint(
    model_dir: str | Path,
    adapter: Path | None,
    reference: str,
    bound: Any,
    train: TrainSettings,
    seed: int,
    dtype: str,
    forget: Sequence[TrainPair],
    retain: Sequence[TrainPair],
) -> str:
    """What determines a request's weights, hashed: a checkpoint is resumed only by the
    request that wrote it (``pulse unlearn`` may be given the same --out with other options)."""
    digest = hashlib.sha256()
    head = [
        str(Path(model_dir).resolve()),
        str(adapter.resolve()) if adapter else None,
        reference,
        bound.name,
        bound.params_dict(),
        train.identity(),
        seed,
        dtype,
    ]
    digest.update(json.dumps(head, sort_keys=True, default=str).encode())
    for name, pairs in (("forget", forget), ("retain", retain)):
        digest.update(name.encode())
        for pair in pairs:
            fields = [getattr(pair, key, None) for key in ("entity_id", "question", "answer")]
            digest.update(json.dumps(fields, default=str).encode())
            image = getattr(pair, "image", None)
            data = image if isinstance(image, bytes) else str(image).encode()
            digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:16]


def adapter_digests(adapter_dir: Path) -> dict[str, str]:
    """The SHA-256 of each file of a saved adapter (recorded in result.json, checked on
    reuse: a damaged adapter must not pass for a finished request)."""
    return folder_digests(adapter_dir)


def adapter_problem(adapter_dir: Path, recorded: Any) -> str | None:
    """What is wrong with a finished request's adapter against its recorded digests, or
    ``None``. Results of older versions (no digests) are checked for the files only."""
    if not (adapter_dir / "adapter_config.json").is_file():
        return "missing or incomplete (no adapter_config.json)"
    if not isinstance(recorded, dict):
        return None
    return digest_problem(adapter_dir, recorded, "the request wrote")


def edit_problem(edit_dir: Path, record: dict[str, Any]) -> str | None:
    """What is wrong with a finished request's weight edit against its recorded digests."""
    if not is_edit_dir(edit_dir):
        return "missing or incomplete (no edit.safetensors)"
    recorded = record.get("edit_sha256")
    return digest_problem(edit_dir, recorded, "the request wrote") if recorded else None


def own_state(out: Path, record: dict[str, Any]) -> Path:
    """A finished request's own state: its weight edit or its adapter."""
    return out / (EDIT_DIR if record.get("edit") else ADAPTER_DIR)


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


def load_unlearned(
    out_dir: str | Path, *, dtype: str = "auto", device: str | None = None, merged: bool = False
) -> tuple[nn.Module, Any]:
    """The model a finished request produced (earlier adapters merged, its adapter on top),
    in eval mode, and its processor.

    ``merged`` folds the request's adapter into the weights as well: a plain model with the
    same function (to float rounding) whose forward skips the LoRA layers' extra work, which
    made the tiny model's evaluation forwards about twice as slow.
    """
    out = Path(out_dir)
    model_dir, earlier, record = finished_request(out)
    model = merge_adapters(load_model(model_dir, dtype=dtype, device=device), earlier)
    if record.get("edit"):
        model = apply_state(model, own_state(out, record))  # an edit is in the weights
    else:
        model = load_adapter(model, out / ADAPTER_DIR)
        if merged:
            model = merge(model)
    model.eval()
    return model, load_processor(model_dir)


def finished_request(out: Path) -> tuple[Path, tuple[Path, ...], dict[str, Any]]:
    """A finished request's base model, the earlier adapters merged under its own (in order)
    and its record; one line when it is missing, damaged or did not finish."""
    if not (out / RESULT_FILE).is_file():
        raise ModelError(f"{out}: no {RESULT_FILE} (not a finished unlearning request)")
    record = RequestResult.read(out).record
    if record.get("status") != "ok":
        raise ModelError(f"{out}: the request did not finish (status {record.get('status')})")
    model, merged = applies_on(out, record)
    return model, tuple(merged), record


def merge_adapters(model: nn.Module, adapters: Sequence[Path]) -> nn.Module:
    """``model`` with each state (an adapter, or a weight edit) folded into its weights, in
    order."""
    for adapter in adapters:
        model = apply_state(model, adapter)
    return model
