"""Cost of the robustness attacks and the generalisation splits per model state.

Every state of a run is evaluated once on its people's Full_Set questions and the general
set (``Measurer.evaluate``); the generalisation splits add its people's Test_Set questions (no
general set). The robustness scenario scores an attacked state on what its table reads only:
the forget people's Full_Set questions, no general set, with the run's kept encodings (the
first attacked state encodes them, the others reuse them). Per attacked state: a quantized
copy (8 and 4 bits; torchao on CPU, or ``--backend bitsandbytes``) or a relearned copy
(``--steps`` LoRA steps on the training pairs of half the forget people), then that
evaluation. This times each (in CPU seconds of the process: the machine is shared) on one
model of the demo's shapes (the world's tiny LLaVA recipe's ``TinyModelConfig``, random
weights: the cost does not depend on what a model knows) for the fine-tuned people of the
world (half of Full_Set forgotten), against the plain evaluation of the same state (timed
before and after), and adds them up for the demo's robustness stage (``--states`` attacked
states: the finetuned scenario's three methods, ``before`` and the oracle). Without
``--world`` the default world is built in a temporary directory. Example::

    nice -n 19 .venv/bin/python benchmarks/robustness_cost.py --threads 2 --no-generalisation
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import torch

from pulse.data.mllmu import read_mllmu
from pulse.models.loading import load_model_and_processor
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
    # CPU seconds of this process (all its threads), not wall time: on a shared machine
    # other jobs' load stretches wall time by several times and by the minute, while the
    # work's own CPU time moves much less.
    start = time.process_time()
    work()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, help="a built world (default: build one)")
    parser.add_argument("--size", default="default", help="world size when building one")
    parser.add_argument("--steps", type=int, default=RelearnSettings().steps)
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 4])
    parser.add_argument("--backend", default="auto", choices=["auto", "torchao", "bitsandbytes"])
    parser.add_argument("--states", type=int, default=5, help="attacked states to add up")
    parser.add_argument("--batch-size", type=int, default=EvalConfig().batch_size)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-generalisation", action="store_true", help="skip the Test_Set")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
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
    forget_items = measurer.items("Full_Set", forget)
    test = [
        i for p in read_mllmu(mllmu, TEST_CONFIG) if p.id in set(people) for i in unseen_items(p)
    ]
    print(f"threads {torch.get_num_threads()}, world {world}, {len(people)} people")
    measurer.evaluate(model, processor, items)  # warm-up: the encoding cache, as a run keeps it
    # The plain evaluation is timed before and after the attacks (the machine is shared: its
    # load moves), and every figure is read against the mean of the two.
    plains = [_timed(lambda: measurer.evaluate(model, processor, items))]
    general = len(measurer.general_rows)
    lines: list[tuple[str, float]] = []

    def report(what: str, seconds: float) -> None:
        lines.append((what, seconds))
        print(f"{what}: {seconds:.1f} CPU s", flush=True)

    if not args.no_generalisation:
        measurer.evaluate(model, processor, test, general=False)
        generalisation = _timed(lambda: measurer.evaluate(model, processor, test, general=False))
        report(f"generalisation splits ({len(test)} Test_Set questions)", generalisation)

    def attacked_evaluation(state) -> float:
        return _timed(lambda: measurer.evaluate(state, processor, forget_items, general=False))

    first = attacked_evaluation(model)  # the first attacked state encodes the forget questions
    kept = attacked_evaluation(model)
    report(f"attacked-state evaluation, first (encoding {len(forget_items)} questions)", first)
    report("attacked-state evaluation, encodings kept (no general rows)", kept)
    saved = tmp / "state"
    model.save_pretrained(saved, safe_serialization=True)
    processor.save_pretrained(saved)
    load = _timed(lambda: load_model_and_processor(saved))
    report("loading a state", load)
    per_state = 0.0
    for bits in args.bits:
        copied = copy.deepcopy(model)
        start = time.process_time()
        quantized = quantize(copied, processor, bits, args.backend)
        made = time.process_time() - start
        evaluated = attacked_evaluation(quantized)
        per_state += load + made + evaluated
        report(f"quantize-{bits}: quantizing", made)
        report(f"quantize-{bits}: evaluating", evaluated)
    settings = RelearnSettings(steps=args.steps)
    half, _ = halves(forget, 0)
    pairs = settings.pairs(mllmu, half, 0)
    train = settings.train_settings(TrainSettings())
    start = time.process_time()
    again, _ = relearned(lambda: (copy.deepcopy(model), processor), pairs, train, 0)
    made = time.process_time() - start
    evaluated = attacked_evaluation(again)
    per_state += load + made + evaluated
    relearning = f"relearn ({settings.steps} steps of {settings.batch_size}, {len(pairs)} pairs)"
    report(f"{relearning}: training", made)
    report(f"{relearning}: evaluating", evaluated)
    report("every attack on one state (loads included)", per_state)
    report(f"the robustness stage on {args.states} states", args.states * per_state + first - kept)
    plains.append(_timed(lambda: measurer.evaluate(model, processor, items)))
    plain = sum(plains) / len(plains)
    print(
        f"\nstate evaluation ({len(items)} Full_Set questions, {general} general rows): "
        + " and ".join(f"{p:.1f}" for p in plains)
        + f" CPU s (before and after), mean {plain:.1f}"
    )
    for what, seconds in lines:
        print(f"{what}: {seconds:.1f} CPU s, {seconds / plain * 100:.0f} % of the state evaluation")


if __name__ == "__main__":
    main()
