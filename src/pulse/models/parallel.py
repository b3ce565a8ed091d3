"""Data-parallel training in local CPU processes, started from inside one call.

:func:`run_data_parallel` sends a model to ``processes`` worker processes (``spawn`` start
method), each of which joins one ``torch.distributed`` group (gloo, ``127.0.0.1`` and a free
port; the ``RANK`` / ``LOCAL_RANK`` / ``WORLD_SIZE`` environment a launcher would set) and runs
the same function on its copy: with the Trainer that is one data-parallel training (DDP).
Rank 0 then hands back its trained tensors, which are copied into the caller's model in place.

Weights travel as safetensors only: the model's structure (modules, config, PEFT wrapper) is
pickled with every tensor replaced by a reference into a safetensors file, and what comes back
is rank 0's trainable parameters and buffers by name (frozen parameters never change). Both
files live in a temporary directory that is removed, and the workers stopped, however the call
ends (a worker's error, Ctrl-C). A worker's exception is raised in the caller as one error.

As with any ``spawn`` start, each worker imports the caller's main module again: a script that
trains this way keeps its work under ``if __name__ == "__main__":``. Starting the workers
(Python, torch and transformers imports) takes several seconds, paid once per call.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from pulse.errors import ConfigError, ModelError, PulseError

_JOB, _WEIGHTS = "job.pkl", "job.safetensors"
_RESULT, _TRAINED = "result.json", "trained.safetensors"
# Worker errors that are the toolkit's own one-line messages keep their class in the caller.
_KEEP = {"ConfigError": ConfigError, "ModelError": ModelError}


class WorkerTraceback(Exception):
    """The traceback of a worker's exception, attached as the ``__cause__`` of the error."""

    def __str__(self) -> str:
        return "\n" + str(self.args[0])


def world_size() -> int:
    """Processes of the distributed run this process belongs to (1 outside one)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def in_distributed_run() -> bool:
    return world_size() > 1


def split_batch(batch_size: int, processes: int, what: str = "train 'batch_size'") -> int:
    """Each process's share of a step's ``batch_size`` examples (data parallel: the step is
    the same step on the same examples whatever the number of processes)."""
    if batch_size % processes:
        raise ConfigError(
            f"{what} {batch_size} does not split evenly over {processes} processes: "
            f"use a multiple of {processes}"
        )
    return batch_size // processes


def available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_data_parallel(
    fn: Callable[..., Any],
    model: nn.Module,
    args: Sequence[Any],
    processes: int,
    *,
    threads: int | None = None,
) -> Any:
    """Run ``fn(model_copy, *args)`` in ``processes`` processes of one gloo group; copy rank 0's
    trained tensors into ``model`` in place and return rank 0's result.

    ``fn`` must be a module-level function (the workers import it) returning JSON-able data;
    ``args`` must pickle. Each worker uses ``threads`` intra-op threads (default: the cores
    available divided by ``processes``, at least 1).
    """
    if processes < 2:
        raise ConfigError(f"run_data_parallel needs at least 2 processes, got {processes}")
    threads = threads or max(1, available_cores() // processes)
    context = torch.multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="pulse-parallel-") as tmp:
        job = Path(tmp)
        _save_job(job, model, (fn, tuple(args)))
        port = free_port()
        workers: list[Any] = []
        try:
            for rank in range(processes):
                worker = context.Process(
                    target=_worker,
                    args=(str(job), rank, processes, port, threads, os.getpid()),
                    name=f"pulse-train-{rank}",
                    daemon=True,
                )
                workers.append(worker)
                worker.start()
            _wait(workers, job)
        finally:
            _stop(workers)
        if not (job / _RESULT).is_file():
            raise ModelError("training processes ended without a result from rank 0")
        result = json.loads((job / _RESULT).read_text())
        _load_trained(model, job / _TRAINED)
    return result["value"]


# --- the job: model structure pickled, tensors in safetensors -------------------------------


def _save_job(job: Path, model: nn.Module, payload: Any) -> None:
    tensors: dict[str, torch.Tensor] = {}
    keys: dict[int, str] = {}
    storages: set[int] = set()

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            if not isinstance(obj, torch.Tensor):
                return None
            if type(obj) not in (torch.Tensor, nn.Parameter):
                raise ModelError(f"cannot send a {type(obj).__name__} to the training processes")
            if obj.device.type != "cpu":
                raise ModelError(
                    f"training in several processes runs on CPU; the model has a tensor on "
                    f"{obj.device} (move it to CPU first)"
                )
            key = keys.get(id(obj))
            if key is None:
                key = keys[id(obj)] = f"t{len(keys)}"
                data = obj.detach().contiguous()
                storage = data.untyped_storage().data_ptr()
                if storage in storages:  # safetensors refuses tensors sharing memory
                    data = data.clone()
                storages.add(data.untyped_storage().data_ptr())
                tensors[key] = data
            kind = "param" if isinstance(obj, nn.Parameter) else "tensor"
            return (kind, key, obj.requires_grad)

        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, nn.Module):
                state = _module_state(obj)
                if state is not None:
                    return (_new_module, (type(obj),), state)
            return NotImplemented

    buffer = io.BytesIO()
    try:
        Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump((model, payload))
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise ModelError(
            f"cannot send the model and data to the training processes: {exc}"
        ) from exc
    save_file(tensors, str(job / _WEIGHTS))
    (job / _JOB).write_bytes(buffer.getvalue())


def _load_job(job: Path) -> tuple[nn.Module, Any]:
    tensors = load_file(str(job / _WEIGHTS))
    loaded: dict[str, torch.Tensor] = {}

    class Unpickler(pickle.Unpickler):
        def persistent_load(self, pid: Any) -> Any:
            kind, key, requires_grad = pid
            if key not in loaded:
                data = tensors[key]
                if kind == "param":
                    loaded[key] = nn.Parameter(data, requires_grad=requires_grad)
                else:
                    loaded[key] = data.requires_grad_(requires_grad)
            return loaded[key]

    # The structure comes from this call's own parent process, written just now.
    model, payload = Unpickler(io.BytesIO((job / _JOB).read_bytes())).load()
    _register_output_capture(model)
    return model, payload


# transformers (5.x) captures hidden states with forward hooks that a model installs on its first
# forward that asks for them: local functions, which do not pickle. They are left out (with the
# flag that says they are installed) and the worker's model installs its own. The specs of what
# each class captures are registered per process in PreTrainedModel.__init__, which an unpickled
# model never ran: the worker registers them.
_CAPTURE_MODULE = "transformers.utils.output_capturing"
_CAPTURE_FLAG = "_output_capturing_hooks_installed"
_HOOK_DICTS = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called")


def _module_state(module: nn.Module) -> dict[str, Any] | None:
    """``module``'s pickled state without output-capturing hooks (None: nothing to leave out)."""
    hooks = module.__dict__.get("_forward_hooks") or {}
    dropped = {k for k, h in hooks.items() if getattr(h, "__module__", None) == _CAPTURE_MODULE}
    if not dropped and _CAPTURE_FLAG not in module.__dict__:
        return None
    state = module.__getstate__()
    state.pop(_CAPTURE_FLAG, None)
    for name in _HOOK_DICTS:
        if name in state:
            state[name] = type(state[name])(
                (k, v) for k, v in state[name].items() if k not in dropped
            )
    return state


def _new_module(cls: type) -> nn.Module:
    return cls.__new__(cls)


def _register_output_capture(model: nn.Module) -> None:
    try:
        from transformers import PreTrainedModel
        from transformers.utils.output_capturing import _CAN_RECORD_REGISTRY
    except ImportError:  # another transformers release: nothing to register
        return
    for module in model.modules():
        if isinstance(module, PreTrainedModel):
            _CAN_RECORD_REGISTRY[module] = module._can_record_outputs


def _trained_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """What training may have changed: trainable parameters and buffers, by name."""
    out = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    out.update((n, b.detach()) for n, b in model.named_buffers())
    return {n: t.contiguous() for n, t in out.items()}


def _load_trained(model: nn.Module, path: Path) -> None:
    trained = load_file(str(path))
    targets = dict(model.named_parameters())
    targets.update(model.named_buffers())
    unknown = sorted(set(trained) - set(targets))
    if unknown:
        raise ModelError(f"rank 0 returned tensors the model does not have: {unknown[:3]}")
    with torch.no_grad():
        for name, value in trained.items():
            if targets[name].shape != value.shape:
                raise ModelError(f"{name}: rank 0 returned shape {tuple(value.shape)}")
            targets[name].copy_(value)


# --- workers --------------------------------------------------------------------------------


def _worker(job: str, rank: int, world: int, port: int, threads: int, parent: int) -> None:
    # The parent handles Ctrl-C (it stops the workers); a worker outlives no parent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_WORLD_SIZE=str(world),
        # Set, so that accelerate keeps the thread count below instead of choosing its own.
        OMP_NUM_THREADS=str(threads),
        CUDA_VISIBLE_DEVICES="",  # CPU processes: none of them takes a GPU
    )
    torch.set_num_threads(threads)
    path = Path(job)
    # The worker's own temporary files go inside the job: a stopped worker leaves none behind.
    tempfile.tempdir = str(path)
    try:
        model, (fn, args) = _load_job(path)
        value = fn(model, *args)
        if rank == 0:
            save_file(_trained_tensors(model), str(path / f"{_TRAINED}.tmp"))
            os.replace(path / f"{_TRAINED}.tmp", path / _TRAINED)
            (path / _RESULT).write_text(json.dumps({"value": value}))
    except BaseException as exc:
        error = {
            "time": time.time(),
            "type": type(exc).__name__,
            "pulse": isinstance(exc, PulseError),
            "message": str(exc),
            "traceback": traceback.format_exc(),
        }
        (path / f"error-{rank}.json").write_text(json.dumps(error))
        _exit(1)  # a peer may be stuck in a collective: no teardown
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    _exit(0)  # everything is written; the teardown of torch and transformers takes seconds


def _exit(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _die_with_parent(parent: int) -> None:
    """Linux: this process gets SIGTERM when its parent dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _wait(workers: list[Any], job: Path) -> None:
    pending = list(workers)
    while pending:
        ready = wait([w.sentinel for w in pending])
        for worker in [w for w in pending if w.sentinel in ready]:
            worker.join()
            pending.remove(worker)
            if worker.exitcode != 0:
                raise _worker_error(job, workers.index(worker), worker.exitcode, len(workers))


def _stop(workers: list[Any]) -> None:
    workers = [w for w in workers if w.pid is not None]  # started
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(timeout=10)
        if worker.is_alive():
            worker.kill()
            worker.join()


def _worker_error(job: Path, rank: int, exitcode: int, world: int) -> Exception:
    """The first exception any worker recorded (its peers' errors usually follow from it)."""
    errors = []
    for path in job.glob("error-*.json"):
        with contextlib.suppress(ValueError, OSError):
            errors.append((json.loads(path.read_text()), int(path.stem.split("-")[1])))
    if not errors:
        how = f"signal {-exitcode}" if exitcode < 0 else f"exit code {exitcode}"
        return ModelError(f"training process {rank} of {world} died ({how})")
    error, rank = min(errors, key=lambda e: e[0]["time"])
    if error["pulse"] and error["type"] in _KEEP:
        exc: Exception = _KEEP[error["type"]](error["message"])
    else:
        exc = ModelError(
            f"training process {rank} of {world} failed: {error['type']}: {error['message']}"
        )
    exc.__cause__ = WorkerTraceback(error["traceback"].rstrip())
    return exc
