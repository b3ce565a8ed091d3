"""What evaluating along a request (``train.eval_every``) costs, against the same request
without points.

One request of the demo's finetuned shape (the default world's first ``--forget`` fictitious
people unlearned with ``ga``, the next ``--retain`` retained; the protocol's training defaults:
16 pairs per person, batch 16, one epoch) on a model of the demo's shapes (random weights: the
cost does not depend on what a model knows), trained without points and with points every
``--every`` (default the demo's ``0.6 epoch``), each point scoring the forget and retain
people's MCQ questions with the run's scorer as a protocol run does (no general capability,
the demo's ``eval_general: false``). Variants interleaved over ``--rounds`` rounds; the figure
is the difference of the request's time, per point. Without ``--world`` the default world is
built in a temporary directory. Example::

    nice -n 19 .venv/bin/python benchmarks/trajectory_cost.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from pulse.data.mllmu import read_mllmu
from pulse.methods.points import PointPlan
from pulse.methods.request import run_request, train_pairs
from pulse.models.settings import TrainSettings
from pulse.protocol.config import EvalConfig
from pulse.protocol.measure import Measurer
from pulse.protocol.store import RunStore
from pulse.world.build import build_world
from tiny_training import untrained_world_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, help="a built world (default: build one)")
    parser.add_argument("--every", default="0.6 epoch", help="train.eval_every")
    parser.add_argument("--forget", type=int, default=25)
    parser.add_argument("--retain", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="trajectory-cost-"))
    world = args.world or build_world(tmp / "world", seed=0, size="default").path
    mllmu = world / "mllmu"
    model, processor = untrained_world_model(world)
    model_dir = tmp / "model"
    model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    people = sorted(p.id for p in read_mllmu(mllmu, "Full_Set"))
    forget, retain = people[: args.forget], people[args.forget : args.forget + args.retain]
    forget_pairs, retain_pairs = train_pairs(mllmu, forget), train_pairs(mllmu, retain)
    measurer = Measurer(RunStore(tmp / "run", {}), EvalConfig(), mllmu, None, seed=0)
    items = measurer.items("Full_Set", forget + retain)
    point_seconds: list[float] = []

    def evaluate(step, model, processor):
        start = time.perf_counter()
        measurer.evaluate(model, processor, items, general=False)
        point_seconds.append(time.perf_counter() - start)
        return None

    variants = {"without points": None, f"every {args.every}": PointPlan(args.every, evaluate)}
    times: dict[str, list[float]] = {name: [] for name in variants}
    points: dict[str, int] = {}
    print(f"threads {torch.get_num_threads()}, {len(items)} questions per point, world {world}")
    for round_ in range(args.rounds):
        for name, plan in variants.items():
            start = time.perf_counter()
            result = run_request(
                model_dir,
                forget_pairs,
                retain_pairs,
                "ga",
                None,
                tmp / "requests" / f"{round_}-{len(times[name])}-{name.replace(' ', '_')}",
                train=TrainSettings(checkpoint_every=None),
                progress=False,
                report_to=(),
                points=plan,
            )
            seconds = time.perf_counter() - start
            times[name].append(seconds)
            points[name] = len(result.record["eval_steps"])
            print(
                f"  round {round_ + 1} {name}: {seconds:.1f} s, {result.steps} steps, "
                f"points at {result.record['eval_steps']}",
                flush=True,
            )
    base, along = (statistics.median(t) for t in times.values())
    count = list(points.values())[-1]
    print(
        f"request without points median {base:.1f} s; with {count} points {along:.1f} s: "
        f"+{along - base:.1f} s, {(along - base) / max(count, 1):.1f} s per point "
        f"(the evaluations alone: median {statistics.median(point_seconds):.1f} s each)"
    )


if __name__ == "__main__":
    main()
