"""A whole `pulse run` of a small protocol: one process against P processes under `torchrun`
(gloo, data parallel requests, evaluation split over the processes), on the same machine.

A small synthetic world is built in a temporary directory (or ``--world``) with an untrained
tiny model saved as both the base and the fine-tuned checkpoint (the timing does not depend on
what the model knows). The protocol: the finetuned scenario on ``--people`` people with
``ga_kl`` and ``npo``, ``--steps`` steps of batch 8 per request, general capability on 6
MMBench questions. The variants run interleaved over ``--rounds`` rounds (load from other
processes hits them alike), each in a fresh run directory; printed: the wall time of each
command (process start, imports and the report included) and the ratio of the one-process time
to each. Example::

    .venv/bin/python benchmarks/parallel_run.py --rounds 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from pulse.models.parallel import available_cores
from pulse.world.build import build_world
from tiny_training import untrained_world_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--people", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--world", type=Path, help="an existing world (default: build one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pulse-bench-") as tmp:
        world = args.world or build_world(Path(tmp) / "world", seed=0, size="small").path
        model, processor = untrained_world_model(world)
        checkpoint = Path(tmp) / "model"
        model.save_pretrained(checkpoint)
        processor.save_pretrained(checkpoint)
        config = Path(tmp) / "run.yaml"
        config.write_text(yaml.safe_dump(_protocol(world, checkpoint, args)))

        cores = available_cores()
        per_process = max(1, cores // args.processes)
        launch = [sys.executable, "-m", "torch.distributed.run"]
        variants = {  # name: (command, threads per process)
            f"1 process x {cores} threads": ([sys.executable, "-m", "pulse.cli", "run"], cores),
            f"{args.processes} processes x {per_process} thread(s)": (
                [*launch, "--nproc_per_node", str(args.processes), "-m", "pulse.cli", "run"],
                per_process,
            ),
        }
        print(f"{cores} cores, {args.people} people, {args.rounds} round(s)", flush=True)
        wall: dict[str, list[float]] = {name: [] for name in variants}
        for round_ in range(args.rounds):
            for name, (command, threads) in variants.items():
                out = Path(tmp) / f"run-{round_}-{len(wall[name])}-{name[0]}"
                env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
                start = time.perf_counter()
                done = subprocess.run(
                    [*command, str(config), "--out", str(out)],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                wall[name].append(time.perf_counter() - start)
                if done.returncode != 0:
                    sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
                print(f"  round {round_ + 1} {name}: {wall[name][-1]:.1f} s", flush=True)
        reference = statistics.median(wall[next(iter(variants))])
        print(f"\n{'variant':<28} {'wall s':>8} {'speed-up':>9}")
        for name, times in wall.items():
            median = statistics.median(times)
            print(f"{name:<28} {median:>8.1f} {reference / median:>8.2f}x")


def _protocol(world: Path, model: Path, args: argparse.Namespace) -> dict:
    off = {"enabled": False}
    return {
        "models": {"base": str(model), "finetuned": str(model)},
        "data": {"mllmu": str(world / "mllmu"), "mmbench": str(world / "mmbench" / "dev.tsv")},
        "train": {"max_steps": args.steps, "batch_size": 8, "pairs_per_id": 4},
        "eval": {"general_questions": 6},
        "methods": [{"method": "ga_kl"}, {"method": "npo"}],
        "scenarios": {
            "finetuned": {"people": args.people},
            **{name: off for name in ("pretrained", "sequential", "scope", "pebench")},
        },
    }


if __name__ == "__main__":
    main()
