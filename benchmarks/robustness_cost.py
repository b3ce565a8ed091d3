"""Cost of the robustness attacks and the generalisation splits per model state.

Every state of a run is evaluated once on its people's Full_Set questions and the general
set (``Measurer.evaluate``); the generalisation splits add its people's Test_Set questions (no
general set), and the robustness scenario, per attacked state, a quantized copy evaluated
again (8 and 4 bits, torchao on CPU) and a relearned copy (``relearn.steps`` LoRA steps on the
training pairs of half the forget people, then evaluated again). This times each on one model
of the demo's shapes (the world's tiny LLaVA recipe's ``TinyModelConfig``, random weights: the
cost does not depend on what a model knows) for the fine-tuned people of the world (half of
Full_Set forgotten), against the plain evaluation of the same state. Without ``--world`` the
default world is built in a temporary directory. Example::

    nice -n 19 .venv/bin/python benchmarks/robustness_cost.py
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import torch

from pulse.data.mllmu import read_mllmu
from pulse.models.settings import TrainSettings
from pulse.protocol.attacks.quantize import quantize
from pulse.protocol.attacks.relearn import RelearnSettings, halves, relearned
from pulse.protocol.config import EvalConfig
from pulse.protocol.generalisation import TEST_CONFIG, unseen_items
from pulse.protocol.measure import Measurer
from pulse.protocol.store import RunStore
from pulse.world.build import build_world
from tiny_training import untrained_world_model


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, help="a built world (default: build one)")
    parser.add_argument("--size", default="default", help="world size when building one")
    parser.add_argument("--steps", type=int, default=RelearnSettings().steps)
    parser.add_argument("--batch-size", type=int, default=EvalConfig().batch_size)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="robustness-cost-"))
    world = args.world or build_world(tmp / "world", seed=0, size=args.size).path
    mllmu = world / "mllmu"

    model, processor = untrained_world_model(world)
    measurer = Measurer(
        RunStore(tmp / "run", {}),
        EvalConfig(batch_size=args.batch_size),
        mllmu,
        world / "mmbench" / "dev.tsv",
        seed=0,
    )
    people = sorted(p.id for p in read_mllmu(mllmu, "Full_Set"))
    forget = people[: len(people) // 2]
    items = measurer.items("Full_Set", people)
    test = [
        i for p in read_mllmu(mllmu, TEST_CONFIG) if p.id in set(people) for i in unseen_items(p)
    ]
    print(f"threads {torch.get_num_threads()}, world {world}, {len(people)} people")
    measurer.evaluate(model, processor, items)  # warm-up: the encoding cache, as a run keeps it
    plain = _timed(lambda: measurer.evaluate(model, processor, items))
    general = len(measurer.general_rows)
    print(
        f"state evaluation ({len(items)} Full_Set questions, {general} general rows): {plain:.1f} s"
    )
    measurer.evaluate(model, processor, test, general=False)
    generalisation = _timed(lambda: measurer.evaluate(model, processor, test, general=False))
    print(
        f"generalisation splits ({len(test)} Test_Set questions): {generalisation:.1f} s, "
        f"{generalisation / plain * 100:.0f} % of the state evaluation"
    )
    for bits in (8, 4):
        copied = copy.deepcopy(model)
        start = time.perf_counter()
        quantized = quantize(copied, processor, bits)
        made = time.perf_counter() - start
        evaluated = _timed(lambda q=quantized: measurer.evaluate(q, processor, items))
        total = made + evaluated
        print(
            f"quantize-{bits}: quantizing {made:.1f} s + evaluating {evaluated:.1f} s = "
            f"{total:.1f} s, {total / plain * 100:.0f} % of the state evaluation"
        )
    settings = RelearnSettings(steps=args.steps)
    half, _ = halves(forget, 0)
    pairs = settings.pairs(mllmu, half, 0)
    train = settings.train_settings(TrainSettings())
    start = time.perf_counter()
    again, _ = relearned(lambda: (copy.deepcopy(model), processor), pairs, train, 0)
    made = time.perf_counter() - start
    evaluated = _timed(lambda: measurer.evaluate(again, processor, items))
    total = made + evaluated
    print(
        f"relearn ({settings.steps} steps of {settings.batch_size} on {len(pairs)} pairs of "
        f"{len(half)} people): training {made:.1f} s + evaluating {evaluated:.1f} s = "
        f"{total:.1f} s, {total / plain * 100:.0f} % of the state evaluation"
    )


if __name__ == "__main__":
    main()
