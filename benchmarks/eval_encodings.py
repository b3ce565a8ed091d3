"""Evaluating several model states on the same questions, as a protocol run does: every state
encoded afresh against encodings kept across states (``pulse.eval.encodings.EncodingCache``).

``--states`` copies of the model (the first unchanged, the others with their weights perturbed,
as after unlearning requests) are scored with the option-text (or ``--scorer``) scorer on the
world's ``Full_Set`` multiple-choice items and its MMBench dev rows, once without a cache and
once with one, state by state in alternation so that load from other processes hits both alike.
Printed: the seconds per state of each variant (the cached variant's first state fills the
cache), the speed-up on the later states, and whether the two gave identical records. Without
``--model`` a tiny random LLaVA is built on the world's questions; without ``--world`` a small
world is built in a temporary directory (the demo's world and fine-tuned model give the figures
quoted in the README). Example::

    .venv/bin/python benchmarks/eval_encodings.py --world runs/demo/world \\
        --model runs/demo/models/finetuned --states 4
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch

from pulse.data.mllmu import profile_items, read_mllmu
from pulse.data.mmbench import read_mmbench
from pulse.data.schema import ItemKind
from pulse.eval.encodings import EncodingCache
from pulse.eval.mcq import MCQConfig, score_mcq
from pulse.eval.mmbench import evaluate_mmbench
from pulse.models.loading import load_model_and_processor
from pulse.models.tiny import build_tiny_lmm
from pulse.world.build import build_world
from pulse.world.train import WorldTrainConfig


def states(model, count: int, seed: int) -> list:
    torch.manual_seed(seed)
    out = [model]
    for _ in range(count - 1):
        other = copy.deepcopy(model)
        with torch.no_grad():
            for p in other.parameters():
                p.add_(0.01 * torch.randn_like(p))
        out.append(other)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", type=Path, help="an existing world (default: build one)")
    parser.add_argument("--model", type=Path, help="a local HF checkpoint (default: tiny random)")
    parser.add_argument("--states", type=int, default=4)
    parser.add_argument("--scorer", choices=("option_text", "letter"), default="option_text")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pulse-bench-") as tmp:
        world = args.world or build_world(Path(tmp) / "world", seed=0, size="small").path
        items = [
            i
            for p in read_mllmu(world / "mllmu", "Full_Set")
            for i in profile_items(p)
            if i.kind is ItemKind.MCQ
        ]
        rows = read_mmbench(world / "mmbench" / "dev.tsv")
        if args.model:
            model, processor = load_model_and_processor(args.model, dtype="float32")
        else:
            texts = [f"{i.question} {' '.join(i.options.values())}" for i in items]
            model, processor = build_tiny_lmm(texts * 2, WorldTrainConfig().model, seed=0)
        cfg = MCQConfig(batch_size=args.batch_size, scorer=args.scorer)
        print(
            f"{len(items)} MLLMU items + {len(rows)} MMBench rows per state, {args.states} "
            f"states, {args.scorer} scorer, {torch.get_num_threads()} threads"
        )
        cache = EncodingCache()
        seconds: dict[str, list[float]] = {"afresh": [], "encoded once": []}
        same = True

        def evaluate(state, encodings):
            start = time.perf_counter()
            records = score_mcq(state, processor, items, cfg, cache=encodings)
            general = evaluate_mmbench(state, processor, rows, cfg, cache=encodings)
            return time.perf_counter() - start, (records, general)

        for k, state in enumerate(states(model, args.states, seed=0)):
            t_fresh, fresh = evaluate(state, None)
            t_cached, cached = evaluate(state, cache)
            same = same and fresh == cached
            seconds["afresh"].append(t_fresh)
            seconds["encoded once"].append(t_cached)
            print(f"  state {k + 1}: afresh {t_fresh:.2f} s, encoded once {t_cached:.2f} s")
        later = {name: statistics.median(ts[1:]) for name, ts in seconds.items()}
        print(
            f"\nlater states (median): afresh {later['afresh']:.2f} s, encoded once "
            f"{later['encoded once']:.2f} s, {later['afresh'] / later['encoded once']:.2f}x; "
            f"first state with the cache {seconds['encoded once'][0]:.2f} s; "
            f"cache {cache.stored_bytes / 2**20:.1f} MiB; identical records: {same}"
        )


if __name__ == "__main__":
    main()
