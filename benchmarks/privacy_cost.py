"""Cost of membership inference per model state, against the MCQ evaluation of the same state.

A protocol run evaluates every model state once: the MCQ questions of the scenario's people
and the general-capability set (``Measurer.evaluate``), and, with privacy on, the
membership-inference scores of the forget and holdout people's training pairs
(``pulse.eval.membership.score_pairs``: one forward per pair, no generation). This times both on
one model of the demo's shapes (the world's tiny LLaVA: its recipe's ``TinyModelConfig``, random
weights; the cost does not depend on what a model knows), for the demo's two kinds of plan:

- **fine-tuned people** (finetuned, sequential, scope): half of Full_Set's people are members,
  Holdout_Set the non-members;
- **celebrities** (pretrained): ``--celebrities`` members and Holdout_Celebrities;

each with ``--pairs`` pairs per person (default ``privacy.pairs_per_person``, 8; ``0``: every
pair, what the pretrained scenario would score without the cap).

Each is timed ``--repeats`` times after a warm-up; the MCQ evaluation keeps the run's encoding
cache between states and the scoring its encoded pairs, as a protocol run does. Without
``--world`` the default world is built in a temporary directory.
Example::

    nice -n 19 .venv/bin/python benchmarks/privacy_cost.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from pulse.data.mllmu import read_mllmu
from pulse.eval.membership import encode_pairs, score_pairs
from pulse.protocol.config import EvalConfig
from pulse.protocol.measure import Measurer
from pulse.protocol.privacy import PairPlan, PrivacyConfig, pairs_to_score
from pulse.protocol.store import RunStore
from pulse.world.build import HOLDOUT_CELEBRITIES, HOLDOUT_FICTITIOUS, build_world
from tiny_training import untrained_world_model


def _timed(repeats: int, work) -> list[float]:
    work()  # warm-up: first-call costs (the encoding cache, allocations) are not per state
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return times


def _ids(mllmu: Path, config: str) -> list[str]:
    return sorted(p.id for p in read_mllmu(mllmu, config))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, help="a built world (default: build one)")
    parser.add_argument("--size", default="default", help="world size when building one")
    parser.add_argument(
        "--pairs",
        type=int,
        default=PrivacyConfig().pairs_per_person,
        help="pairs per person (default: privacy.pairs_per_person's)",
    )
    parser.add_argument("--celebrities", type=int, default=10, help="forget celebrities")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=EvalConfig().batch_size)
    args = parser.parse_args()
    args.pairs = args.pairs or None
    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="privacy-cost-"))
    world = args.world or build_world(tmp / "world", seed=0, size=args.size).path
    mllmu = world / "mllmu"

    model, processor = untrained_world_model(world)

    eval_cfg = EvalConfig(batch_size=args.batch_size)
    measurer = Measurer(
        RunStore(tmp / "run", {}), eval_cfg, mllmu, world / "mmbench" / "dev.tsv", seed=0
    )
    fictitious = _ids(mllmu, "Full_Set")
    celebrities = _ids(mllmu, "Retain_Set")
    plans = {
        "fine-tuned people": (
            "Full_Set",
            fictitious,
            PairPlan(
                tuple(fictitious[: len(fictitious) // 2]),
                tuple(_ids(mllmu, HOLDOUT_FICTITIOUS)),
                args.pairs,
                PrivacyConfig().min_k,
                0,
            ),
        ),
        "celebrities": (
            "Retain_Set",
            celebrities,
            PairPlan(
                tuple(celebrities[: args.celebrities]),
                tuple(_ids(mllmu, HOLDOUT_CELEBRITIES)),
                args.pairs,
                PrivacyConfig().min_k,
                0,
            ),
        ),
    }
    print(f"threads {torch.get_num_threads()}, batch size {args.batch_size}, world {world}")
    for name, (config, people, plan) in plans.items():
        items = measurer.items(config, people)
        pairs = pairs_to_score(mllmu, plan)
        mcq = _timed(args.repeats, lambda items=items: measurer.evaluate(model, processor, items))
        # The batches kept across states, as the protocol keeps them.
        kept = encode_pairs(processor, pairs, args.batch_size)
        mia = _timed(
            args.repeats,
            lambda pairs=pairs, k=plan.min_k, kept=kept: score_pairs(
                model, processor, pairs, k=k, batch_size=args.batch_size, encoded=kept
            ),
        )
        m, p = statistics.median(mcq), statistics.median(mia)
        print(
            f"{name}: MCQ evaluation of a state ({len(items)} questions of {len(people)} "
            f"people, and {len(measurer.general_rows)} general rows) median {m:.2f} s "
            f"{[round(t, 2) for t in mcq]}; membership inference ({len(pairs)} pairs of "
            f"{len(plan.members)} + {len(plan.holdout)} people) median {p:.2f} s "
            f"{[round(t, 2) for t in mia]}: {p / m * 100:.0f} % of the MCQ evaluation"
        )


if __name__ == "__main__":
    main()
