"""Pre-training speed of the tiny LMM: one process with T threads against P processes (data
parallel, gloo) with cores // P threads each, the same steps of the same data.

A small synthetic world is built in a temporary directory (or ``--world``), the tiny LLaVA of
``pulse world train`` is built on its corpus, and each variant trains a copy of it for
``--steps`` steps at the world's pre-training settings (global batch ``--batch-size``; each of
the P processes takes batch / P). Variants run interleaved over ``--rounds`` rounds, so that load
from other processes on the machine hits all of them alike; printed per variant: seconds per
step of the training loop (rank 0's loop; the median over rounds), the wall time of the whole
call (with P processes: starting them, sending the model, loading the weights back), and the
ratio of the single-process loop time to each variant's. ``--single-thread`` adds 1 process x 1
thread for reference. Example::

    .venv/bin/python benchmarks/parallel_train.py --steps 30
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from pulse.methods.supervised import train_supervised
from pulse.models.parallel import available_cores
from tiny_training import interleaved, tiny_setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="threads of the 1-process run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--single-thread", action="store_true", help="add 1 process x 1 thread")
    parser.add_argument("--world", type=Path, help="an existing world (default: build one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pulse-bench-") as tmp:
        setup = tiny_setup(args.world, tmp, args.steps, args.batch_size)
        per_process = max(1, available_cores() // args.processes)
        variants = {f"1 process x {args.threads} threads": (1, args.threads)}
        if args.single_thread:
            variants["1 process x 1 thread"] = (1, 1)
        variants[f"{args.processes} processes x {per_process} thread(s)"] = (
            args.processes,
            per_process,
        )
        print(
            f"{len(setup.corpus)} corpus examples, {args.steps} steps of batch "
            f"{args.batch_size}, {available_cores()} cores, {args.rounds} round(s)"
        )
        wall: dict[str, list[float]] = {name: [] for name in variants}

        def run(name: str):
            processes, threads = variants[name]
            torch.set_num_threads(threads)  # the 1-process runs; workers set their own
            cfg = replace(setup.config, processes=processes)
            start = time.perf_counter()
            stats = train_supervised(copy.deepcopy(setup.model), setup.processor, setup.corpus, cfg)
            wall[name].append(time.perf_counter() - start)
            return stats, f"call {wall[name][-1]:.1f} s, loss {stats.last_loss:.3f}"

        results = interleaved(list(variants), args.rounds, run)
        loop = {name: [s.seconds_per_step for s in runs] for name, runs in results.items()}
        reference = statistics.median(loop[next(iter(variants))])
        print(f"\n{'variant':<28} {'s/step':>8} {'call s':>8} {'speed-up':>9}")
        for name in variants:
            per_step = statistics.median(loop[name])
            print(
                f"{name:<28} {per_step:>8.3f} {statistics.median(wall[name]):>8.1f} "
                f"{reference / per_step:>8.2f}x"
            )


if __name__ == "__main__":
    main()
