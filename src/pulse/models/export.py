"""``pulse export``: a model state as a checkpoint that plain transformers (and the tools built on
it: lmms-eval, MLLMU-Bench's eval.py) load with no pulse code and no extra file.

What is exported (the source):

- a request directory (``pulse unlearn --out``, or ``RUN/requests/<key>``): the model it left,
  earlier adapters merged (sequential requests), its adapter on top;
- a run directory with ``state``: one of its requests, by key (``request:<key>`` as the
  evaluation records name it, or the key alone);
- an adapter directory with ``base`` (default: the base its config names, when that directory
  exists);
- a model directory: copied with the chat template fixed (a tiny model of an earlier version).

Merged (default), the output is a standalone checkpoint: safetensors weights, config,
generation config, processor (tokenizer, image processor) and a chat template that renders exactly
the training text (:func:`pulse.models.template.training_template`). With ``adapter_only``, it is
the adapter with a portable base reference (``base_model_name_or_path`` is ``base_ref``, never an
absolute path) and the same processor files. ``pulse_export.json`` says what was exported.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from pulse.errors import ConfigError, DataError
from pulse.files import read_json, write_json
from pulse.models.adapters import _atomic_dir, check_adapter
from pulse.models.edits import is_edit_dir
from pulse.models.loading import check_model_dir, load_model, load_processor
from pulse.models.template import with_training_template

EXPORT_RECORD = "pulse_export.json"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


@dataclass(frozen=True)
class Source:
    """What to export: the base model, the adapters merged into it (in order), the adapter on
    top (None: the base itself) and a description for the record."""

    kind: str  # request, adapter or model
    base: Path
    merged: tuple[Path, ...] = ()
    adapter: Path | None = None
    about: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Exported:
    out: Path
    kind: str  # merged or adapter
    source: Source


def resolve_source(path: Path, *, state: str | None = None, base: Path | None = None) -> Source:
    """The :class:`Source` that ``path`` (and ``state`` / ``base``) names; bad input is one
    line naming it."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(
            f"{path}: not found (expected a run, request, adapter or model directory)"
        )
    if (path / "manifest.json").is_file() and (path / "config.yaml").is_file():
        return _run_state(path, state)
    if state is not None:
        raise ConfigError(f"--state: {path} is not a run directory (no manifest.json)")
    if (path / "result.json").is_file():
        return _request(path)
    if (path / "adapter_config.json").is_file():
        return _adapter(path, base)
    if (path / "config.json").is_file():
        check_model_dir(path)
        return Source("model", path, about={"model": path.name})
    raise ConfigError(
        f"{path}: not a run, request, adapter or model directory (no manifest.json, "
        "result.json, adapter_config.json or config.json)"
    )


def _run_state(run: Path, state: str | None) -> Source:
    requests = run / "requests"
    finished = (
        sorted(d.name for d in requests.iterdir() if (d / "result.json").is_file())
        if requests.is_dir()
        else []
    )
    if state is None:
        raise ConfigError(
            f"{run}: a run directory: name the request to export with --state "
            f"(finished requests: {_listed(requests, finished)})"
        )
    key = state.removeprefix("request:")
    if key not in finished:
        raise ConfigError(
            f"--state: {state!r} is not a finished request of {run} "
            f"(finished requests: {_listed(requests, finished)})"
        )
    source = _request(requests / key)
    return Source(source.kind, source.base, source.merged, source.adapter,
                  {**source.about, "run": run.name, "state": f"request:{key}"})  # fmt: skip


def _listed(requests: Path, finished: list[str], most: int = 30) -> str:
    """``KEY (method, N to forget)`` for each finished request, so a user can tell them apart."""

    def described(key: str) -> str:
        try:
            record = read_json(requests / key / "result.json")
            return f"{key} ({record['method']}, {len(record['forget_ids'])} to forget)"
        except (DataError, KeyError, TypeError):
            return key  # its own damage is said when it is the one asked for

    shown = ", ".join(described(key) for key in finished[:most])
    more = f" and {len(finished) - most} more" if len(finished) > most else ""
    return (shown + more) or "none"


def _request(out: Path) -> Source:
    from pulse.methods.request import finished_request, own_state

    base, merged, record = finished_request(out)  # damaged or unfinished: one line
    return Source(
        "request",
        base,
        merged,
        own_state(out, record),  # its adapter, or its weight edit
        {"request": out.name, "method": record.get("method"), "params": record.get("params")},
    )


def _adapter(path: Path, base: Path | None) -> Source:
    check_adapter(path)
    if base is None:
        named = read_json(path / "adapter_config.json").get("base_model_name_or_path")
        if not named or not Path(named).is_dir():
            raise ConfigError(
                f"{path}: an adapter: give its base model with --base (its config names "
                f"{named!r}, not a directory here)"
            )
        base = Path(named)
    return Source("adapter", Path(base), (), path, {"adapter": path.name})


def export(
    source: Source,
    out: str | Path,
    *,
    adapter_only: bool = False,
    base_ref: str | None = None,
    dtype: str = "auto",
) -> Exported:
    """Write ``source`` to ``out`` (see the module docstring); ``out`` may hold an earlier
    export, nothing else."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / EXPORT_RECORD).is_file():
        raise ConfigError(f"--out: {out} exists and is not an earlier export; choose another")
    if adapter_only:
        return _export_adapter(source, out, base_ref)
    if base_ref is not None:
        raise ConfigError("--base-ref: only with --adapter-only (a merged model has no base)")
    processor = with_training_template(load_processor(source.base))
    from pulse.methods.request import merge_adapters

    own = (source.adapter,) if source.adapter is not None else ()
    model = merge_adapters(load_model(source.base, dtype=dtype), (*source.merged, *own))
    _complete_generation_config(model, processor)
    with _atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
        write_json(tmp / EXPORT_RECORD, _record(source, "merged", None))
    return Exported(out, "merged", source)


def _export_adapter(source: Source, out: Path, base_ref: str | None) -> Exported:
    if source.adapter is None:
        raise ConfigError(f"--adapter-only: {source.base} is a model, it has no adapter")
    if is_edit_dir(source.adapter):
        raise ConfigError(
            "--adapter-only: this request edited the weights (a training-free method), it has "
            "no adapter; export it merged instead"
        )
    if source.merged:
        raise ConfigError(
            f"--adapter-only: this request's adapter applies on its base with "
            f"{len(source.merged)} earlier adapter(s) merged; export it merged instead"
        )
    ref = base_ref if base_ref is not None else source.base.name
    if not ref or PurePosixPath(ref).is_absolute() or PureWindowsPath(ref).is_absolute():
        raise ConfigError(f"--base-ref: {ref!r} is not portable: give a Hub id or a relative path")
    processor = with_training_template(load_processor(source.base))
    config = read_json(source.adapter / "adapter_config.json")
    config["base_model_name_or_path"] = ref
    with _atomic_dir(out) as tmp:
        shutil.copy2(source.adapter / "adapter_model.safetensors", tmp)
        (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
        processor.save_pretrained(tmp)
        write_json(tmp / EXPORT_RECORD, _record(source, "adapter", ref))
    return Exported(out, "adapter", source)


def _complete_generation_config(model: Any, processor: Any) -> None:
    """Generation stops at the EOS the model was trained to write; padding is defined."""
    tokenizer = getattr(processor, "tokenizer", processor)
    config = model.generation_config
    for name in ("eos_token_id", "pad_token_id", "bos_token_id"):
        if getattr(config, name, None) is None:
            value = getattr(tokenizer, name, None)
            if name == "pad_token_id" and value is None:
                value = tokenizer.eos_token_id
            setattr(config, name, value)


def _record(source: Source, kind: str, base_ref: str | None) -> dict[str, Any]:
    from pulse.versions import installed

    version = installed(("pulse-unlearn",))["pulse-unlearn"]
    record: dict[str, Any] = {
        "format": kind,
        "source": source.kind,
        **source.about,
        "merged_adapters": len(source.merged),
        "pulse": version,
    }
    if base_ref is not None:
        record["base_model"] = base_ref
    return record
