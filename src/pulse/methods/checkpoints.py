"""A request's training checkpoints: written by the Trainer, verified before they are resumed.

A checkpoint is the Trainer's own folder ``checkpoint-N`` (the trained weights, optimizer,
schedule, RNG states and trainer state) plus :data:`STATE_FILE`, written last: the request it
belongs to (a fingerprint of everything that determines the weights), the micro-batches
consumed and each process's retain stream (:class:`pulse.methods.batches.UnlearnCollator`),
the loss history so far, and the SHA-256 of every other file. A folder without it was cut
short; one whose files differ from their digests was damaged; one of another request (the same
output folder, other settings or data) is not this request's. Each is removed and the previous
checkpoint tried, else the request starts from its first step, said in one line on stderr.
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulse.errors import DataError
from pulse.files import digest_problem, folder_digests, read_json, write_json

STATE_FILE = "pulse_checkpoint.json"
_FOLDER = re.compile(r"^checkpoint-(\d+)$")


@dataclass(frozen=True)
class CheckpointPlan:
    """Where and how often a loop checkpoints: every ``steps`` optimizer steps and / or
    ``seconds`` of training (0: not by that measure), under ``folder``; ``fingerprint``
    names the request (a checkpoint of another one is never resumed)."""

    folder: Path
    fingerprint: str
    steps: int = 0
    seconds: float = 0.0

    @property
    def active(self) -> bool:
        return bool(self.steps or self.seconds)


@dataclass
class Resume:
    """A verified checkpoint to resume from."""

    path: Path
    step: int
    state: dict[str, Any] = field(default_factory=dict)

    def collator(self, process: int) -> dict[str, Any] | None:
        return (self.state.get("collators") or {}).get(str(process))


def collator_file(folder: Path, process: int) -> Path:
    return folder / f"pulse_collator_{process}.json"


def write_state(folder: Path, state: dict[str, Any]) -> None:
    """Seal a checkpoint the Trainer wrote: ``state`` and the digest of each of its files
    (each process's collator file included), written atomically and last."""
    files = folder_digests(folder, skip=frozenset({STATE_FILE}))
    collators = {}
    for name in files:
        match = re.match(r"^pulse_collator_(\d+)\.json$", name)
        if match:
            collators[match.group(1)] = read_json(folder / name)
    write_json(folder / STATE_FILE, {**state, "collators": collators, "files": files})


def _problem(folder: Path, fingerprint: str) -> tuple[str, dict[str, Any] | None]:
    """What is wrong with ``folder`` as a checkpoint of request ``fingerprint`` ("" when
    nothing is) and its state."""
    path = folder / STATE_FILE
    if not path.is_file():
        return "incomplete (cut short while it was written)", None
    try:
        state = read_json(path)
    except DataError as exc:
        return exc.detail, None
    if not isinstance(state, dict) or not isinstance(state.get("files"), dict):
        return f"{STATE_FILE} is not a checkpoint record", None
    if state.get("fingerprint") != fingerprint:
        return "of another request (other settings or data)", None
    problem = digest_problem(folder, state["files"], "was written")
    return (problem, None) if problem else ("", state)


def latest_checkpoint(plan: CheckpointPlan, where: str, *, main: bool = True) -> Resume | None:
    """The newest sound checkpoint of the request under ``plan.folder``, or ``None``. Those
    found unsound are removed and the outcome said in one line naming ``where`` (the request),
    by the main process only."""
    if not plan.folder.is_dir():
        return None
    found = sorted(
        (int(m.group(1)), p)
        for p in plan.folder.iterdir()
        if p.is_dir() and (m := _FOLDER.match(p.name))
    )
    bad: list[str] = []
    chosen: Resume | None = None
    for step, folder in reversed(found):
        problem, state = _problem(folder, plan.fingerprint)
        if not problem:
            chosen = Resume(folder, step, state or {})
            break
        bad.append(f"{folder.name} {problem}")
        if main:
            shutil.rmtree(folder, ignore_errors=True)
    if not main:
        return chosen
    if bad:
        then = (
            f"resuming from {chosen.path.name}"
            if chosen is not None
            else "the request starts again from its first step"
        )
        say(f"{where}: checkpoint {'; '.join(bad)}; {then}")
    elif chosen is not None:
        say(f"{where}: resuming from its checkpoint at step {chosen.step}")
    return chosen


def remove_checkpoints(folder: Path) -> None:
    """A finished request's checkpoints are of no further use."""
    shutil.rmtree(folder, ignore_errors=True)


def say(text: str) -> None:
    print(f"pulse: {text}", file=sys.stderr, flush=True)
