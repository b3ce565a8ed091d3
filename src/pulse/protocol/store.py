"""The run directory: resolved config, manifest of stages, per-stage results, atomic writes.

Layout::

    RUN/config.yaml        the resolved config (what ran; a different config is refused)
    RUN/manifest.json      config hash, versions, seed, precision, every stage's status and timing
    RUN/splits/            the persisted ID lists of each scenario
    RUN/stages/<id>.jsonl  the result rows of one finished stage (a cell of the results)
    RUN/requests/<key>/    one unlearning request (adapter + result.json), keyed by everything
                           that determines it, so identical requests of two scenarios run once
    RUN/evals/<key>.json   per-item records of one model state on one set of people
    RUN/results.jsonl      every finished stage's rows, rebuilt after each stage

In a launched run of several processes (``torchrun`` / ``accelerate launch``) rank 0 alone
reads and writes the run directory; the others get its answers (:mod:`pulse.models.collective`)
and compute each stage's rows with it, and the stage is sealed by rank 0 once every process is
done with it. A process that dies mid-stage leaves that stage unsealed: it runs again on resume.

A stage is done when its rows file exists, the manifest says so and the file is the one the
manifest recorded (its row count and SHA-256). Both are written atomically (rows first), so a
killed run loses at most the stage it was in; a stage file damaged or cut afterwards is found
on resume and that stage runs again, said in one line. An unreadable manifest with the same
``config.yaml`` starts a fresh one (every stage runs again; the request and evaluation caches,
which verify themselves, are reused).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pulse.errors import ConfigError, DataError
from pulse.files import read_json, read_text, sha256_file, write_json, write_text
from pulse.models.collective import from_main, is_main
from pulse.protocol.config import RunConfig, dump_config
from pulse.protocol.precision import describe
from pulse.protocol.results import (
    NUMBER_FIELDS,
    RESULTS_FILE,
    ResultRow,
    dump_rows,
    read_results,
    status_row,
    write_results,
)
from pulse.protocol.verify import FINISHED, stage_file, stage_file_problem
from pulse.versions import installed

MANIFEST = "manifest.json"
CONFIG = "config.yaml"


def content_key(*parts: Any) -> str:
    """A short stable hash of JSON-able parts (request and evaluation cache keys)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def free_directory(run_dir: Path, config: RunConfig | None = None) -> Path:
    """``RUN`` itself, or the first of ``RUN-2``, ``RUN-3``, ... that holds ``config``'s run
    (to resume it), else the first that does not hold a run."""
    candidate, number = run_dir, 1
    while (candidate / MANIFEST).exists():
        if config is not None and _holds(candidate, config):
            return candidate
        number += 1
        candidate = run_dir.with_name(f"{run_dir.name}-{number}")
    return candidate


def _holds(root: Path, config: RunConfig) -> bool:
    """Whether the run directory ``root`` is ``config``'s: its manifest's config hash, or, with
    a damaged manifest, its ``config.yaml`` (the manifest is then started afresh)."""
    try:
        return _read_manifest(root, config) is None or (
            read_json(root / MANIFEST)["config_hash"] == config.digest()
        )
    except (ConfigError, DataError, KeyError, TypeError):
        return False


class RunStore:
    """One run directory. :meth:`open` creates it or checks that it holds the same config."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.manifest = manifest
        self._told: set[str] = set()  # stages whose damaged file was already said
        # Stage files found whole, by (checksum, size, mtime): the results file is rebuilt after
        # every stage, which would otherwise hash every finished stage's file each time.
        self._whole: dict[str, tuple[Any, int, int]] = {}
        # Stages that failed in an earlier run (a method that raised: out of memory, say): they
        # run again once in this one. A diverged stage is a result and stays.
        self._retry: set[str] = set()
        self.created = False  # made by this open (see discard_if_new)

    @classmethod
    def open(cls, root: str | Path, config: RunConfig, *, new_dir: bool = False) -> RunStore:
        """Create or resume ``root`` (rank 0; every process gets the same store)."""
        store = from_main(lambda: cls._open(Path(root), config, new_dir=new_dir))
        if not is_main() and not (store.root / MANIFEST).is_file():
            raise ConfigError(
                f"{store.root}: rank 0's run directory is not visible here: a run of several "
                "machines needs its run directory on a filesystem every machine sees"
            )
        return store

    @classmethod
    def _open(cls, root: Path, config: RunConfig, *, new_dir: bool = False) -> RunStore:
        digest = config.digest()
        path = root / MANIFEST
        if path.is_file():
            manifest = _read_manifest(root, config)
            if manifest is not None and manifest.get("config_hash") != digest:
                if new_dir:
                    return cls._open(free_directory(root, config), config)
                changed = _changed_keys(root / CONFIG, config)
                raise ConfigError(
                    f"{root} holds a run of a different config (changed: {changed}); "
                    "use another --out, or --new-dir to pick a fresh directory beside it"
                )
            if manifest is not None:
                manifest["finished"] = False
                manifest.setdefault("precision", describe(config))  # made before it was kept
                store = cls(root, manifest)
                store._retry = _retried(manifest["stages"])
                store._save()
                # A run killed between a stage's manifest entry and the results file left
                # the results file a stage behind.
                store._rebuild_results()
                return store
            say(f"{path}: unreadable, the config is the same: starting a fresh manifest")
        root.mkdir(parents=True, exist_ok=True)
        write_text(root / CONFIG, dump_config(config))
        manifest = {
            "config_hash": digest,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "versions": installed(),
            "seed": config.seed,
            "precision": describe(config),
            "stages": {},
            "finished": False,
        }
        store = cls(root, manifest)
        store.created = True
        store._save()
        return store

    def discard_if_new(self) -> None:
        """Undo :meth:`open` of a directory it created and nothing has run in (its inputs were
        refused): no run directory is left to refuse the corrected config as a different one."""
        if self.created and not self.manifest["stages"]:
            for name in (MANIFEST, CONFIG):
                (self.root / name).unlink(missing_ok=True)
            if not any(self.root.iterdir()):
                self.root.rmdir()

    # --- stages -----------------------------------------------------------------------------

    def stage_status(self, stage: str) -> str | None:
        return self.manifest["stages"].get(stage, {}).get("status")

    def is_done(self, stage: str) -> bool:
        """Whether ``stage`` finished and its rows file is the one it wrote. A damaged or
        missing file is said once (the stage then runs again)."""
        return from_main(lambda: self._is_done(stage))

    def _is_done(self, stage: str) -> bool:
        record = self.manifest["stages"].get(stage, {})
        if record.get("status") not in FINISHED or stage in self._retry:
            return False
        path = self.rows_path(stage)
        try:
            stat = path.stat()
            seen = (record.get("sha256"), stat.st_size, stat.st_mtime_ns)
        except OSError:
            seen = None
        if seen is not None and self._whole.get(stage) == seen:
            return True
        problem = stage_file_problem(path, record)
        if problem is None:
            if seen is not None:
                self._whole[stage] = seen
            return True
        if stage not in self._told:
            self._told.add(stage)
            say(f"{self.rows_path(stage)}: {problem}; stage {stage} runs again")
        return False

    def rows_path(self, stage: str) -> Path:
        return stage_file(self.root, stage)

    def stage_rows(self, stage: str) -> list[ResultRow]:
        return from_main(lambda: read_results(self.rows_path(stage)))

    def run_stage(self, stage: str, compute: Callable[[], Sequence[ResultRow]]) -> list[ResultRow]:
        """The rows of ``stage``: read back when done, else computed, saved and marked.
        The stage's status is ``ok`` unless its rows carry a diverged / failed status row (a
        cell with a number that is not finite gets a failed one: :func:`finite_cells`).
        Every process computes; rank 0 seals the stage with its rows."""
        if self.is_done(stage):
            return self.stage_rows(stage)
        from_main(lambda: self._running(stage))
        started = dt.datetime.now(dt.UTC)
        rows = list(compute())
        return from_main(lambda: self._seal(stage, rows, started))

    def _running(self, stage: str) -> None:
        self._retry.discard(stage)
        record = self.manifest["stages"].setdefault(stage, {})
        record.update(status="running", error=None)
        record.pop("rows", None)
        record.pop("sha256", None)
        self._save()

    def _seal(self, stage: str, rows: list[ResultRow], started: dt.datetime) -> list[ResultRow]:
        rows = finite_cells(stage, rows)
        record = self.manifest["stages"][stage]
        path = write_text(self.rows_path(stage), dump_rows(rows))
        statuses = {r.status for r in rows}
        final = next((s for s in ("failed", "diverged") if s in statuses), "done")
        details = [r.detail for r in rows if r.status != "ok" and r.detail]
        ended = dt.datetime.now(dt.UTC)
        record.update(
            status=final,
            seconds=round((ended - started).total_seconds(), 3),
            ended=ended.isoformat(timespec="microseconds"),
            error=details[0] if details else None,
            rows=len(rows),
            sha256=sha256_file(path),
        )
        self._save()
        self._rebuild_results()
        return rows

    def note(self, stage: str, **info: Any) -> None:
        """Extra facts about a stage in the manifest (e.g. the request directory it used)."""

        def write() -> None:
            self.manifest["stages"].setdefault(stage, {}).update(info)
            self._save()

        from_main(write)

    def rebuild_results(self) -> Path:
        return from_main(self._rebuild_results)

    def _rebuild_results(self) -> Path:
        rows: list[ResultRow] = []
        for stage in self.manifest["stages"]:
            if self._is_done(stage):
                rows.extend(read_results(self.rows_path(stage)))
        return write_results(self.root / RESULTS_FILE, rows)

    def finish(self, seconds: float) -> None:
        def write() -> None:
            self.manifest["finished"] = True
            self.manifest["seconds"] = round(seconds, 3)
            self._save()

        from_main(write)

    # --- other files ------------------------------------------------------------------------

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def read_json(self, *parts: str, parse: Callable[[Any], Any] | None = None) -> Any:
        """The JSON in the run directory's file ``parts`` (through ``parse`` when given);
        ``None`` when it is missing, or damaged (said in one line: it is computed again)."""
        return from_main(lambda: self._read_json(parts, parse))

    def _read_json(self, parts: Sequence[str], parse: Callable[[Any], Any] | None) -> Any:
        path = self.path(*parts)
        if not path.is_file():
            return None
        try:
            data = read_json(path)
            return data if parse is None else parse(data)
        except DataError as exc:
            say(f"{exc}; computed again")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            say(f"{path}: not what was stored ({type(exc).__name__}); computed again")
        return None

    def write_json(self, obj: Any, *parts: str) -> Path:
        return from_main(lambda: write_json(self.path(*parts), obj))

    def _save(self) -> None:
        write_json(self.root / MANIFEST, self.manifest)


def _retried(stages: dict[str, dict[str, Any]]) -> set[str]:
    """The stages a resume runs again: those that failed and, in each of their scenarios, the
    stages sealed after them (contrasts, matched forgetting, gaps read the cells that failed;
    a stage of an older manifest, which kept no ``ended``, counts as after), said in one line."""
    failed = [s for s, record in stages.items() if record.get("status") == "failed"]
    if not failed:
        return set()
    retry = set(failed)
    for stage in failed:
        scenario, ended = stage.split("/")[0], stages[stage].get("ended", "")
        retry |= {
            s
            for s, record in stages.items()
            if s.split("/")[0] == scenario and record.get("ended", "~") >= ended
        }
    after = len(retry) - len(failed)
    say(
        f"the stages that failed run again: {', '.join(failed)}"
        + (f" (and the {after} after them in their scenarios, which read them)" if after else "")
    )
    return retry


def finite_cells(stage: str, rows: Sequence[ResultRow]) -> list[ResultRow]:
    """``rows``, where a cell (one training seed's, with repeats) holding a number that is not
    finite (which no results file keeps: it would be unreadable) has a ``failed`` status row
    naming it instead, said in one line."""
    bad: dict[tuple[Any, ...], str] = {}
    for row in rows:
        field = next((f for f in NUMBER_FIELDS if not _finite(getattr(row, f))), None)
        if field is not None and (row.cell, row.repeat) not in bad:
            value = getattr(row, field)
            bad[row.cell, row.repeat] = (
                f"stage {stage}: {row.metric} on {row.split or '-'}/{row.modality} has {field} "
                f"{value}, not a finite number"
            )
            say(f"{bad[row.cell, row.repeat]}; the cell is recorded as failed")
    if not bad:
        return list(rows)
    out: list[ResultRow] = []
    failed = set(bad)
    for row in rows:
        where = (row.cell, row.repeat)
        if where not in failed:
            out.append(row)
        elif (detail := bad.pop(where, None)) is not None:  # the cell's first row: its status
            place = (row.scenario, row.kind, row.method, row.setting, row.request, row.requests)
            status = status_row(*place, status="failed", detail=detail)
            out.append(replace(status, repeat=row.repeat))
    return out


def _finite(value: Any) -> bool:
    return value is None or math.isfinite(value)


def say(text: str) -> None:
    """One line about a damaged run file, on stderr (the progress lines are on stdout)."""
    print(f"pulse: {text}", file=sys.stderr, flush=True)


def _read_manifest(root: Path, config: RunConfig) -> dict[str, Any] | None:
    """The manifest of ``root``; ``None`` when it is damaged but ``config.yaml`` shows the
    same config (a fresh manifest is then safe). Damaged beside another config: refused."""
    path = root / MANIFEST
    try:
        manifest = read_json(path)
        stages = manifest.get("stages") if isinstance(manifest, dict) else None
        if not isinstance(stages, dict) or not all(isinstance(r, dict) for r in stages.values()):
            raise DataError(path, "not a run manifest (no 'stages' object of records)")
    except DataError as exc:
        try:
            same = read_text(root / CONFIG) == dump_config(config)
        except DataError:
            same = False
        if same:
            return None
        raise ConfigError(
            f"{exc}, and {root / CONFIG} is not this config's: use another --out"
        ) from None
    return manifest


def _changed_keys(old_path: Path, config: RunConfig) -> str:
    import yaml

    try:
        old = yaml.safe_load(read_text(old_path)) or {}
    except (DataError, yaml.YAMLError):
        return "config.yaml unreadable"
    changed = sorted(_diff(old, config.to_dict()))
    return ", ".join(changed[:4]) + (" ..." if len(changed) > 4 else "") if changed else "unknown"


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _diff(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".")]
