"""Training speed of the tiny LMM on a CPU in float32 and under bf16 autocast, the latter with
PyTorch's flash attention and with the eager attention the training loop uses for CPU bf16.

A small synthetic world is built in a temporary directory (or ``--world``: the demo's world
gives the figures quoted in the README) and the tiny LLaVA of ``pulse world train``; each
variant trains a copy of it for ``--steps`` steps at the world's pre-training settings, the
variants interleaved over ``--rounds`` rounds. Printed per variant: seconds per step (median
over rounds), the speed-up over float32 and the last loss. Whether bf16 pays depends on the
CPU: with AVX512-BF16 (or AMX) its matrix products run at several times the float32 rate.
Example::

    .venv/bin/python benchmarks/cpu_bf16.py --steps 40
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from dataclasses import replace
from pathlib import Path
from unittest import mock

import torch

from pulse.methods.supervised import train_supervised
from pulse.models.attention import CPU_BF16_ATTENTION
from tiny_training import interleaved, print_speed_table, tiny_setup

# variant -> (bf16 autocast, eager attention under it)
VARIANTS = {
    "float32": (False, False),
    "bf16, flash attention": (True, False),
    "bf16, eager attention": (True, True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--world", type=Path, help="an existing world (default: build one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pulse-bench-") as tmp:
        setup = tiny_setup(args.world, tmp, steps=args.steps, batch_size=args.batch_size)
        print(
            f"{args.steps} steps of batch {args.batch_size}, {torch.get_num_threads()} threads, "
            f"{args.rounds} round(s)"
        )

        own = setup.model.config._attn_implementation  # sdpa: PyTorch's flash attention

        def run(name: str):
            bf16, eager = VARIANTS[name]
            cfg = replace(setup.config, bf16=bf16, logging_steps=1)
            # The flash-attention variant names the model's own kernel as the loop's bf16 one.
            kernel = CPU_BF16_ATTENTION if eager else own
            with mock.patch("pulse.models.attention.CPU_BF16_ATTENTION", kernel):
                stats = train_supervised(
                    copy.deepcopy(setup.model), setup.processor, setup.corpus, cfg
                )
            return stats, f"loss {stats.last_loss:.4f}"

        results = interleaved(list(VARIANTS), args.rounds, run)
        print_speed_table(results, reference="float32")


if __name__ == "__main__":
    main()
