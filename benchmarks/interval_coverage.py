"""How often the protocol's 95 % intervals hold the number they estimate, on simulated runs.

Not a speed figure: a check of the intervals' calibration (``pulse.eval.intervals``), printed
as coverage per setting. Each simulated run answers ``--questions`` questions about each of
``--people`` people under R training seeds: a question is right with probability
sigmoid(mu + a_person + b_seed), a_person ~ N(0, ``--person-sd``), b_seed ~ N(0, ``--seed-sd``)
(knowledge per person, plus how a training run happened to go). The estimand is the expected
accuracy over people and training runs, computed once by Monte Carlo; a run's interval is
``person_bootstrap_over_seeds`` on its R seeds' records (one seed: the plain person bootstrap).
Coverage near 95 % means the intervals are honest; far below, too narrow. Example::

    .venv/bin/python benchmarks/interval_coverage.py --runs 400
"""

from __future__ import annotations

import argparse

import numpy as np

from pulse.data.schema import ItemKind, Modality
from pulse.eval.intervals import person_bootstrap_over_seeds
from pulse.eval.records import ItemRecord


def simulate(rng, people, questions, seeds, mu, person_sd, seed_sd) -> list[list[ItemRecord]]:
    ability = rng.normal(0.0, person_sd, size=people)
    runs = []
    for shift in rng.normal(0.0, seed_sd, size=seeds):
        p = 1 / (1 + np.exp(-(mu + ability + shift)))
        right = rng.random((people, questions)) < p[:, None]
        runs.append(
            [
                ItemRecord(f"p{i}-q{q}", f"p{i}", ItemKind.MCQ, Modality.TEXT, "a", "a", bool(ok))
                for i in range(people)
                for q, ok in enumerate(right[i])
            ]
        )
    return runs


def estimand(mu: float, person_sd: float, seed_sd: float, draws: int = 2_000_000) -> float:
    rng = np.random.default_rng(12345)
    logits = mu + rng.normal(0, person_sd, draws) + rng.normal(0, seed_sd, draws)
    return float(np.mean(1 / (1 + np.exp(-logits))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300, help="simulated runs per setting")
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--mu", type=float, default=0.0, help="logit of the typical accuracy")
    parser.add_argument("--person-sd", type=float, default=1.5)
    parser.add_argument("--seed-sd", type=float, nargs="+", default=[0.0, 0.3, 0.6])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 3, 5, 10])
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()

    print(
        f"{args.people} people x {args.questions} questions, person sd {args.person_sd} "
        f"(logit), {args.runs} simulated runs per row"
    )
    print(f"{'seed sd':>8} {'seeds':>6} {'coverage':>9} {'mean width':>11}")
    for seed_sd in args.seed_sd:
        target = estimand(args.mu, args.person_sd, seed_sd)
        for seeds in args.seeds:
            rng = np.random.default_rng(int(seed_sd * 1000) * 100 + seeds)
            hits, widths = 0, []
            for k in range(args.runs):
                runs = simulate(
                    rng, args.people, args.questions, seeds, args.mu, args.person_sd, seed_sd
                )
                interval = person_bootstrap_over_seeds(runs, seed=k, resamples=args.resamples)
                assert interval is not None
                hits += interval.low <= target <= interval.high
                widths.append(interval.high - interval.low)
            coverage = hits / args.runs
            width = 100 * float(np.mean(widths))
            print(f"{seed_sd:>8.1f} {seeds:>6d} {coverage:>8.1%} {width:>8.1f} pt")


if __name__ == "__main__":
    main()
