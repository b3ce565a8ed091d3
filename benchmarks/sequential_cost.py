"""Cost of the sequential scenario against the number of requests K, at equal forget data.

The same forget set is unlearned in K = 1, 2, 5, 10 requests (``pulse run``'s sequential
scenario, one method, no batch row), each K in a fresh run directory. Printed per K: the
total wall time, the training and evaluation time summed over requests, and the per-request
means. Expected shape: training time roughly flat in K (the same examples in total, plus a
per-request setup), evaluation time per request flat (every request evaluates the same people
and the general set), so the total grows linearly in K.

Without ``--models`` / ``--world`` a small world is built and its tiny models trained for a
few steps in a temporary directory (timing does not need a model that knows anything).
Example::

    .venv/bin/python benchmarks/sequential_cost.py --threads 2
    .venv/bin/python benchmarks/sequential_cost.py --world runs/demo/world --models runs/demo/models
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from pulse.protocol.config import parse_config
from pulse.protocol.runner import run_protocol


def quick_models(root: Path) -> tuple[Path, Path]:
    from pulse.world.build import build_world
    from pulse.world.train import train_world_models, world_train_config

    world = build_world(root / "world", seed=0, size="small").path
    cfg = world_train_config(0)
    cfg = replace(
        cfg,
        pretrain=replace(cfg.pretrain, max_steps=30, progress=False),
        finetune=replace(cfg.finetune, max_steps=10, progress=False),
    )
    train_world_models(world, root / "models", cfg, progress=False, check=False)
    return world, root / "models"


def run_k(world: Path, models: Path, k: int, args: argparse.Namespace, out: Path) -> dict:
    config = parse_config(
        {
            "models": {"base": str(models / "base"), "finetuned": str(models / "finetuned")},
            "data": {
                "mllmu": str(world / "mllmu"),
                "mmbench": str(world / "mmbench" / "dev.tsv"),
            },
            "train": {"epochs": args.epochs, "batch_size": args.batch_size},
            "eval": {"general_questions": args.general_questions},
            "methods": [{"method": args.method}],
            "scenarios": {
                "finetuned": {"enabled": False, "forget_fraction": args.forget_fraction},
                "pretrained": {"enabled": False},
                "scope": {"enabled": False},
                "sequential": {"requests": k, "batch": False},
            },
        }
    )
    started = time.perf_counter()
    store = run_protocol(config, out, progress=False)
    total = time.perf_counter() - started
    stages = [
        s
        for name, s in store.manifest["stages"].items()
        if name.startswith("sequential/sequential/")
    ]
    train = [s["train_seconds"] for s in stages]
    evals = [s["eval_seconds"] for s in stages]
    forget = (out / "splits" / "finetuned" / "forget.txt").read_text().split()
    return {
        "k": k,
        "people": len(forget),
        "total": total,
        "train": sum(train),
        "eval": sum(evals),
        "train_per": statistics.mean(train),
        "eval_per": statistics.mean(evals),
        "eval_spread": (max(evals) - min(evals)) / statistics.mean(evals),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", type=Path, help="a world directory (default: build small)")
    parser.add_argument("--models", type=Path, help="a directory with base/ and finetuned/")
    parser.add_argument("--ks", default="1,2,5,10", help="numbers of requests to time")
    parser.add_argument("--method", default="ga")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--forget-fraction", type=float, default=0.75)
    parser.add_argument("--general-questions", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory(prefix="pulse-seqcost-") as tmp:
        root = Path(tmp)
        if args.world and args.models:
            world, models = args.world, args.models
        else:
            world, models = quick_models(root)
        ks = [int(k) for k in args.ks.split(",")]
        results = [run_k(world, models, k, args, root / f"run-k{k}") for k in ks]
    print(f"sequential scenario, method {args.method}, equal forget data; seconds")
    header = f"{'K':>3} {'people':>6} {'total':>8} {'train':>8} {'eval':>8} "
    header += f"{'train/req':>10} {'eval/req':>9} {'eval spread':>11}"
    print(header)
    for r in results:
        print(
            f"{r['k']:>3} {r['people']:>6} {r['total']:>8.1f} {r['train']:>8.1f} {r['eval']:>8.1f} "
            f"{r['train_per']:>10.2f} {r['eval_per']:>9.2f} {100 * r['eval_spread']:>10.0f}%"
        )
    if len(results) > 1:
        first, last = results[0], results[-1]
        slope = (last["total"] - first["total"]) / (last["k"] - first["k"])
        print(
            f"marginal cost of one more request: {slope:.2f} s "
            f"(per-request evaluation {statistics.mean(r['eval_per'] for r in results):.2f} s)"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
