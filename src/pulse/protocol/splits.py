"""Who is unlearned when: seeded forget / retain splits and the sequential bookkeeping.

Pure functions over ID lists; the runner persists their results under ``RUN/splits``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pulse.errors import ConfigError


def seeded_order(ids: Sequence[str], seed: int) -> list[str]:
    """The IDs sorted, then shuffled with ``random.Random(seed)``: independent of input order."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    return order


def forget_retain(
    ids: Sequence[str], fraction: float, seed: int, people: int | None = None
) -> tuple[list[str], list[str]]:
    """The first ``people`` of a seeded order (all by default); ``fraction`` of them (at least
    one, at most all but one) to forget, the rest to retain. Both lists sorted."""
    order = seeded_order(ids, seed)
    if people is not None:
        if people > len(order):
            raise ConfigError(f"people: {people} asked for, the data has {len(order)}")
        order = order[:people]
    if len(order) < 2:
        raise ConfigError(
            f"need at least 2 people to split into forget and retain, got {len(order)}"
        )
    n_forget = forget_size(len(order), fraction)
    return sorted(order[:n_forget]), sorted(order[n_forget:])


def forget_size(people: int, fraction: float) -> int:
    """How many of ``people`` (at least 2) :func:`forget_retain` puts in the forget set."""
    return min(max(1, round(fraction * people)), people - 1)


def partition(ids: Sequence[str], k: int, seed: int) -> list[list[str]]:
    """``ids`` in ``k`` disjoint subsets of near-equal size (sizes differ by at most one), from a
    seeded order; each subset sorted."""
    if k < 1 or k > len(ids):
        raise ConfigError(f"cannot split {len(ids)} people into {k} sequential requests")
    order = seeded_order(ids, seed)
    size, extra = divmod(len(order), k)
    subsets, start = [], 0
    for index in range(k):
        end = start + size + (1 if index < extra else 0)
        subsets.append(sorted(order[start:end]))
        start = end
    return subsets


def sequential_splits(subsets: Sequence[Sequence[str]], request: int) -> dict[str, list[str]]:
    """The people each sequential split holds after ``request`` (0 = before any request):
    ``current`` the subset just unlearned, ``forgotten`` every subset unlearned so far,
    ``pending`` those not yet unlearned, ``forget`` all of them."""
    k = len(subsets)
    if not 0 <= request <= k:
        raise ValueError(f"request {request} outside 0..{k}")
    done = [p for subset in subsets[:request] for p in subset]
    waiting = [p for subset in subsets[request:] for p in subset]
    splits = {
        "current": sorted(subsets[request - 1]) if request else [],
        "forgotten": sorted(done),
        "pending": sorted(waiting),
        "forget": sorted(done + waiting),
    }
    return {name: ids for name, ids in splits.items() if ids}
