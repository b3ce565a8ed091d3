"""Who is unlearned when: seeded splits and the sequential bookkeeping."""

from __future__ import annotations

import pytest

from pulse.errors import ConfigError
from pulse.protocol.splits import forget_retain, partition, sequential_splits

IDS = [f"f{k:03d}" for k in range(1, 11)]


def test_forget_retain_is_seeded_disjoint_and_order_free():
    forget, retain = forget_retain(IDS, 0.5, seed=3)
    assert len(forget) == 5 and len(retain) == 5
    assert not set(forget) & set(retain) and set(forget) | set(retain) == set(IDS)
    assert forget_retain(list(reversed(IDS)), 0.5, seed=3) == (forget, retain)
    assert forget_retain(IDS, 0.5, seed=4) != (forget, retain)
    some_forget, some_retain = forget_retain(IDS, 0.25, seed=3, people=4)
    assert (len(some_forget), len(some_retain)) == (1, 3)
    with pytest.raises(ConfigError, match="people: 11 asked for"):
        forget_retain(IDS, 0.5, seed=0, people=11)


def test_partition_sizes_and_cover():
    subsets = partition(IDS, 3, seed=0)
    assert [len(s) for s in subsets] == [4, 3, 3]
    assert sorted(p for s in subsets for p in s) == IDS
    with pytest.raises(ConfigError, match="cannot split 10 people into 11"):
        partition(IDS, 11, seed=0)


def test_sequential_bookkeeping_after_each_request():
    subsets = [["a", "b"], ["c"], ["d", "e"]]
    before = sequential_splits(subsets, 0)
    assert before == {"pending": ["a", "b", "c", "d", "e"], "forget": ["a", "b", "c", "d", "e"]}
    second = sequential_splits(subsets, 2)
    assert second["current"] == ["c"]
    assert second["forgotten"] == ["a", "b", "c"]
    assert second["pending"] == ["d", "e"]
    last = sequential_splits(subsets, 3)
    assert last["current"] == ["d", "e"] and last["forgotten"] == last["forget"]
    assert "pending" not in last
    with pytest.raises(ValueError):
        sequential_splits(subsets, 4)
