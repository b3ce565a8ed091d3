"""Training speed of the tiny LMM with padded batches against packed ones (``pack_tokens``),
the same steps on the same data.

A small synthetic world is built in a temporary directory (or ``--world``: the demo's world
gives the figures quoted in the README), the tiny LLaVA of ``pulse world train`` is built on its
corpus, and each variant trains a copy of it for ``--steps`` steps at the world's pre-training
settings, on the corpus or on the fine-tuning data (``--data``). Variants run interleaved over
``--rounds`` rounds, so that load from other processes hits all of them alike. Printed per
variant: seconds per step (median over rounds), the tokens the forward computes per step and
the share of them that are padding, the speed-up over padded batches, and the last logged loss
(packing changes the layout, not the loss: the padded and packed losses agree to rounding).
Example::

    .venv/bin/python benchmarks/packing.py --steps 30 --pack 128 256
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from pulse.methods.supervised import train_supervised
from pulse.models.chat import ChatCollator
from pulse.models.packing import pack_batch
from pulse.world.train import _ft_pairs, finetune_examples
from tiny_training import interleaved, tiny_setup


def _ft_examples(world):
    return finetune_examples(_ft_pairs(world))


def layout(processor, examples, batch_size: int, pack_tokens: int, batches: int = 20):
    """(tokens computed per batch, padding share) over ``batches`` random batches."""
    collator = ChatCollator(processor)
    order = random.Random(0).sample(range(len(examples)), min(len(examples), batches * batch_size))
    computed = real = 0
    for start in range(0, len(order), batch_size):
        batch = collator([examples[i] for i in order[start : start + batch_size]])
        real += int(batch["attention_mask"].sum())
        if pack_tokens:
            batch = pack_batch(
                batch,
                pack_tokens,
                pad_token_id=collator.tokenizer.pad_token_id,
                image_token_id=collator.image_token_id,
            )
        computed += batch["input_ids"].numel()
    n = max(1, len(order) // batch_size)
    return computed / n, 1 - real / computed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pack", type=int, nargs="+", default=[128, 256], help="row lengths")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data", choices=("corpus", "finetune"), default="corpus")
    parser.add_argument("--world", type=Path, help="an existing world (default: build one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pulse-bench-") as tmp:
        setup = tiny_setup(args.world, tmp, args.steps, args.batch_size, _ft_examples)
        examples = setup.corpus if args.data == "corpus" else setup.tuning
        processor = setup.processor
        packing = {"padded": 0} | {f"packed {n}": n for n in args.pack}
        print(
            f"{len(examples)} {args.data} examples, {args.steps} steps of batch "
            f"{args.batch_size}, {torch.get_num_threads()} threads, {args.rounds} round(s)"
        )

        def run(name: str):
            cfg = replace(setup.config, pack_tokens=packing[name])
            stats = train_supervised(copy.deepcopy(setup.model), processor, examples, cfg)
            return stats, f"loss {stats.last_loss:.4f}"

        results = interleaved(list(packing), args.rounds, run)
        per_step = {name: [s.seconds_per_step for s in runs] for name, runs in results.items()}
        loss = {name: runs[-1].last_loss for name, runs in results.items()}
        reference = statistics.median(per_step["padded"])
        print(
            f"\n{'variant':<12} {'s/step':>8} {'tokens/step':>12} {'padding':>8} "
            f"{'speed-up':>9} {'last loss':>10}"
        )
        for name, pack_tokens in packing.items():
            tokens, padding = layout(processor, examples, args.batch_size, pack_tokens)
            seconds = statistics.median(per_step[name])
            print(
                f"{name:<12} {seconds:>8.3f} {tokens:>12.0f} {padding:>7.0%} "
                f"{reference / seconds:>8.2f}x {loss[name]:>10.4f}"
            )


if __name__ == "__main__":
    main()
