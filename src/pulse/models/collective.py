"""Working as one of the processes of a launched run (``torchrun`` / ``accelerate launch``).

Every process runs the same program on the same config; these helpers are the few places where
they differ. Rank 0 alone reads and writes shared bookkeeping (:func:`from_main`: it computes,
the others get its answer, or its error); work that splits is split by :func:`sharded` (each
process takes a block of the items, and every process gets every result back, in order); a
step that must run in one process alone (preparing a world, training an oracle) runs in a fresh
single process started by rank 0 (:func:`solo`) while the others wait. The communication is
torch.distributed's own (gloo on CPU, NCCL on GPU); outside a launched run every helper is the
plain single-process call.
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch

from pulse.errors import ConfigError, ModelError, PulseError
from pulse.models.parallel import in_distributed_run

T = TypeVar("T")

# A process waits this long for its peers at a collective (rank 0 alone may prepare a world or
# train an oracle meanwhile). A peer that died is noticed at once; the limit is for hangs.
WAIT_VARIABLE, WAIT_HOURS = "PULSE_DIST_WAIT_HOURS", 6.0
# The launcher's variables: a solo process must not believe it is one rank of several.
_LAUNCH_VARS = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "ROLE_RANK",
    "ROLE_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_RUN_ID",
    "ACCELERATE_USE_CPU",
)


def rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def join(device: torch.device) -> None:
    """Join the launched run's process group (gloo on CPU, NCCL on CUDA), once; nothing
    outside a launched run. The Trainer (accelerate) then trains in this same group."""
    if not in_distributed_run() or torch.distributed.is_initialized():
        return
    timeout = wait_limit()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend=backend, timeout=timeout)


def wait_limit() -> dt.timedelta:
    """How long a process waits for its peers: ``PULSE_DIST_WAIT_HOURS`` (hours, fractions
    allowed; 6 when unset); a value that is not a positive number is one line."""
    text = os.environ.get(WAIT_VARIABLE, "").strip()
    if not text:
        return dt.timedelta(hours=WAIT_HOURS)
    try:
        hours = float(text)
    except ValueError:
        hours = float("nan")
    if not 0 < hours < float("inf"):
        raise ConfigError(f"{WAIT_VARIABLE}: expected a positive number of hours, got {text!r}")
    return dt.timedelta(hours=hours)


def barrier() -> None:
    if _active():
        torch.distributed.barrier()


def from_main(compute: Callable[[], T]) -> T:
    """``compute()`` run by rank 0 alone; every process returns its result (which must
    pickle), or raises its error: a toolkit error keeps its class and line, anything else is a
    ModelError naming it. Also a barrier: nobody goes on before rank 0 is done."""
    if not _active():
        return compute()
    message: list[Any] = [None]
    if is_main():
        try:
            message[0] = ("ok", compute())
        except BaseException as exc:
            message[0] = ("error", _describe(exc))
            torch.distributed.broadcast_object_list(message, src=0)
            raise
    torch.distributed.broadcast_object_list(message, src=0)
    kind, value = message[0]
    if kind == "error":
        raise _error(value)
    return value


def gathered(value: T) -> list[T]:
    """Every process's ``value`` (which must pickle), by rank; ``[value]`` alone."""
    if not _active():
        return [value]
    values: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(values, value)
    return values


def sharded(items: Sequence[Any], work: Callable[[list[Any]], list[T]]) -> list[T]:
    """``work(items)``, the items split over the processes in contiguous blocks: each process
    runs ``work`` on its block (one result per item, in order) and every process gets all the
    results in the items' order. ``work`` must not itself communicate."""
    if not _active():
        return work(list(items))
    size, me = torch.distributed.get_world_size(), torch.distributed.get_rank()
    bounds = [len(items) * r // size for r in range(size + 1)]
    mine: Any = []
    try:
        if bounds[me + 1] > bounds[me]:  # fewer items than processes: some have none
            mine = work(list(items[bounds[me] : bounds[me + 1]]))
        if len(mine) != bounds[me + 1] - bounds[me]:
            raise ModelError(f"a shard gave {len(mine)} results for {bounds[me + 1] - bounds[me]}")
    except Exception as exc:  # every process learns of it: no peer waits for ever
        mine = _Failed(_describe(exc))
    parts: list[Any] = [None] * size
    torch.distributed.all_gather_object(parts, mine)
    failed = [p for p in parts if isinstance(p, _Failed)]
    if failed:
        raise _error(failed[0].error)
    return [result for part in parts for result in part]


def solo(work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``work(*args, **kwargs)`` in one process alone: in a launched run, rank 0 runs it in a fresh
    process without the launcher's variables (so its training is a single-process one) and
    the others wait; its result (which must pickle) goes to every process."""
    if not _active():
        return work(*args, **kwargs)
    return from_main(lambda: _in_fresh_process(work, args, kwargs))


class _Failed:
    def __init__(self, error: dict[str, Any]) -> None:
        self.error = error


_KEEP: dict[str, type[PulseError]] = {"ConfigError": ConfigError, "ModelError": ModelError}


def _describe(exc: BaseException) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "rank": rank(),
        "traceback": traceback.format_exc(),
    }


def _error(error: dict[str, Any]) -> PulseError:
    cls = _KEEP.get(error["type"])
    if cls is not None:
        return cls(error["message"])
    if error["type"] == "DataError":
        return ModelError(error["message"])  # DataError's path is in its message already
    return ModelError(f"process {error['rank']} failed: {error['type']}: {error['message']}")


def _active() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _in_fresh_process(work: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    """``work(*args, **kwargs)`` in a new Python process without the launcher's variables
    (its output is this process's); the call and its result travel as pickles through a
    temporary directory of this process's own."""
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCH_VARS}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # the same modules
    with tempfile.TemporaryDirectory(prefix="pulse-solo-") as tmp:
        job, result = Path(tmp) / "job.pkl", Path(tmp) / "result.pkl"
        job.write_bytes(pickle.dumps((work, args, kwargs)))
        code = "import sys; from pulse.models.collective import _solo_main; _solo_main(sys.argv[1])"
        done = subprocess.run([sys.executable, "-c", code, tmp], env=env, check=False)
        if not result.is_file():
            raise ModelError(f"the single-process step died (exit code {done.returncode})")
        # Written just now by this process's own child.
        kind, value = pickle.loads(result.read_bytes())
    if kind == "error":
        raise _error(value)
    return value


def _solo_main(folder: str) -> None:
    path = Path(folder)
    work, args, kwargs = pickle.loads((path / "job.pkl").read_bytes())
    try:
        message: tuple[str, Any] = ("ok", work(*args, **kwargs))
    except BaseException as exc:
        message = ("error", _describe(exc))
    (path / "result.tmp").write_bytes(pickle.dumps(message))
    os.replace(path / "result.tmp", path / "result.pkl")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # everything is written; the teardown of torch and transformers takes seconds


__all__ = [
    "barrier",
    "from_main",
    "gathered",
    "is_main",
    "join",
    "local_rank",
    "rank",
    "sharded",
    "solo",
    "wait_limit",
]
