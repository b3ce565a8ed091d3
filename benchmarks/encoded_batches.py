"""Training speed of the tiny LMM with every batch collated afresh against batches built from
examples encoded once (``encoding_cache_bytes``), the same steps on the same data.

A small synthetic world is built in a temporary directory (or ``--world``: the demo's world
gives the figures quoted in the README) and the tiny LLaVA of ``pulse world train`` on its
corpus. The first ``--examples`` corpus examples are trained for ``--epochs`` epochs at the
world's pre-training settings (packed batches), so every epoch after the first can reuse the
encodings; variants run interleaved over ``--rounds`` rounds. Printed: the time to collate one
batch afresh and to assemble it from stored encodings, then per variant the seconds per step
(median over rounds), the speed-up, and the last logged loss (the batches are the same tensors,
so the losses are equal). Example::

    .venv/bin/python benchmarks/encoded_batches.py --examples 640 --epochs 3
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from pulse.methods.supervised import train_supervised
from pulse.models.chat import ChatCollator
from pulse.models.encoded import DEFAULT_MAX_BYTES, EncodedExamples
from tiny_training import interleaved, print_speed_table, tiny_setup


def collate_ms(processor, examples, batch_size: int) -> tuple[float, float]:
    """Milliseconds per batch: collated afresh, and assembled from stored encodings."""
    chat = ChatCollator(processor)
    batches = [
        list(range(start, min(start + batch_size, len(examples))))
        for start in range(0, len(examples), batch_size)
    ]
    start = time.perf_counter()
    for indices in batches:
        chat([examples[i] for i in indices])
    fresh = time.perf_counter() - start
    encoded = EncodedExamples(chat, examples)
    for indices in batches:  # the first pass encodes
        encoded.batch(indices)
    start = time.perf_counter()
    for indices in batches:
        encoded.batch(indices)
    stored = time.perf_counter() - start
    return 1000 * fresh / len(batches), 1000 * stored / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=640)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--world", type=Path, help="an existing world (default: build one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pulse-bench-") as tmp:
        setup = tiny_setup(args.world, tmp, steps=-1, batch_size=args.batch_size)
        examples = setup.corpus[: args.examples]
        fresh, stored = collate_ms(setup.processor, examples, args.batch_size)
        print(
            f"{len(examples)} corpus examples, {args.epochs:g} epochs of batch "
            f"{args.batch_size}, {torch.get_num_threads()} threads, {args.rounds} round(s)\n"
            f"one batch: collated afresh {fresh:.1f} ms, from stored encodings {stored:.1f} ms"
        )
        budgets = {"afresh": 0, "encoded once": DEFAULT_MAX_BYTES}

        def run(name: str):
            cfg = replace(
                setup.config,
                epochs=args.epochs,
                logging_steps=1,  # a last loss however few the steps
                encoding_cache_bytes=budgets[name],
            )
            stats = train_supervised(copy.deepcopy(setup.model), setup.processor, examples, cfg)
            return stats, f"loss {stats.last_loss:.4f}"

        results = interleaved(list(budgets), args.rounds, run)
        print_speed_table(results, reference="afresh")


if __name__ == "__main__":
    main()
