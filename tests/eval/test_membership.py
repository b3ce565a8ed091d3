"""Membership-inference scores and AUC, each against an independent computation on hand-made
numbers, and the batched scorer against the model's own training loss."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from pulse.data.mllmu import profile_train_pairs, read_mllmu
from pulse.eval.membership import (
    MEMBERSHIP,
    PairScore,
    PairToScore,
    TokenStats,
    encode_pairs,
    lowest_mean,
    pair_scores,
    score_pairs,
    token_stats,
)
from pulse.eval.mia import (
    MembershipSample,
    auc,
    auc_interval,
    privleak,
    privleak_interval,
    weighted_aucs,
)
from pulse.models.chat import ChatCollator


def test_scores_of_hand_made_token_logprobs():
    lp = [-0.1, -2.0, -0.5, -3.0, -0.2]
    stats = TokenStats(lp, mean=[-1.0, -1.0, -0.5, -2.0, -0.2], variance=[1.0, 4.0, 0.25, 1.0, 0.0])
    scores = pair_scores(stats, "Paris", k=0.4)
    assert scores["loss"] == pytest.approx(5.8 / 5)
    assert scores["zlib"] == pytest.approx(1.16 / len(zlib.compress(b"Paris", 9)))
    # floor(0.4 * 5) = 2 lowest: -3.0 and -2.0
    assert scores["min_k"] == pytest.approx(-2.5)
    # z = (lp - mu) / sigma: 0.9, -0.5, 0.0, -1.0, 0 (sigma 0 counts as 0); two lowest -1.0, -0.5
    assert scores["min_k_pp"] == pytest.approx(-0.75)
    assert lowest_mean([3.0], 0.1) == 3.0  # at least one token
    with pytest.raises(ValueError):
        lowest_mean([1.0], 0.0)


def test_token_stats_against_the_distribution_by_hand():
    probs = [0.5, 0.25, 0.25]
    logits = torch.tensor([[math.log(p) + 7.0 for p in probs]])  # a shift changes nothing
    stats = token_stats(logits, torch.tensor([1]))
    mu = sum(p * math.log(p) for p in probs)
    var = sum(p * math.log(p) ** 2 for p in probs) - mu**2
    assert stats.logprob[0] == pytest.approx(math.log(0.25), abs=1e-6)
    assert stats.mean[0] == pytest.approx(mu, abs=1e-6)
    assert stats.variance[0] == pytest.approx(var, abs=1e-6)


def test_membership_scores_point_to_members():
    seen = PairScore("a", 0, "text", True, 3, loss=0.5, zlib=0.1, min_k=-1.0, min_k_pp=-0.2)
    unseen = PairScore("b", 0, "text", False, 3, loss=2.0, zlib=0.4, min_k=-4.0, min_k_pp=-2.0)
    for name in ("loss", "zlib", "min_k", "min_k_pp"):
        assert MEMBERSHIP[name](seen) > MEMBERSHIP[name](unseen)
    assert MEMBERSHIP["reference"](seen) is None  # no reference loss
    with_ref = PairScore("a", 0, "text", True, 3, 0.5, 0.1, -1.0, -0.2, reference=2.0)
    assert MEMBERSHIP["reference"](with_ref) == pytest.approx(-0.25)


def _sample(members, others, member_people=None, other_people=None):
    return MembershipSample(
        tuple(members),
        tuple(member_people or [f"m{i}" for i in range(len(members))]),
        tuple(others),
        tuple(other_people or [f"o{i}" for i in range(len(others))]),
    )


def test_auc_one_and_a_half_and_privleak_sign():
    apart = _sample([5.0, 6.0, 7.0, 8.0], [1.0, 2.0, 3.0, 4.0])
    assert auc(apart) == 1.0
    alike = _sample([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0])
    assert auc(alike) == 0.5
    interval = auc_interval([apart])
    assert interval is not None and interval.low == interval.high == 1.0
    assert privleak(0.75, 0.5) == pytest.approx(0.5)  # still leaking: positive
    assert privleak(0.4, 0.5) == pytest.approx(-0.2)  # over-unlearned: negative
    assert privleak(0.5, 0.5) == 0.0
    leak = privleak_interval([(apart, alike)])
    assert leak is not None and leak.low > 0
    over = privleak_interval([(_sample([1.0, 2.0], [8.0, 9.0]), _sample([1.0, 2.0], [1.0, 2.0]))])
    assert over is not None and over.high < 0


def test_weighted_auc_is_sklearns_with_unit_and_integer_weights():
    rng = np.random.default_rng(3)
    members = rng.integers(0, 6, 40).astype(float)  # many ties
    others = rng.integers(0, 5, 30).astype(float)
    expected = roc_auc_score([1] * 40 + [0] * 30, np.concatenate([members, others]))
    ones = weighted_aucs(members, others, np.ones((1, 40)), np.ones((1, 30)))
    assert ones[0] == pytest.approx(expected)
    # integer weights are repeated pairs
    mw, ow = rng.integers(0, 3, 40), rng.integers(1, 3, 30)
    repeated = roc_auc_score(
        [1] * int(mw.sum()) + [0] * int(ow.sum()),
        np.concatenate([np.repeat(members, mw), np.repeat(others, ow)]),
    )
    got = weighted_aucs(members, others, mw[None].astype(float), ow[None].astype(float))
    assert got[0] == pytest.approx(repeated)


def test_intervals_need_two_people_a_side_and_hold_the_value():
    one = _sample([3.0, 4.0], [1.0, 2.0], ["m", "m"], ["o1", "o2"])
    assert auc_interval([one]) is None
    rng = np.random.default_rng(0)
    people = [f"p{i // 3}" for i in range(30)]
    noisy = _sample(rng.normal(1, 1, 30), rng.normal(0, 1, 30), people, people)
    interval = auc_interval([noisy])
    assert interval is not None and interval.low <= auc(noisy) <= interval.high
    assert auc_interval([noisy]) == interval  # seeded
    # over seeds: one draw of people for every seed, so identical seeds leave it unchanged
    assert auc_interval([noisy, noisy]) == interval


def test_seeds_scored_on_their_own_pairs_pool_by_people():
    # Two training seeds, each scored on its own pairs of the same people (per-seed pair
    # plans): the interval draws people once for both and holds the mean; PrivLeak pairs
    # each seed with the oracle on that seed's pairs.
    rng = np.random.default_rng(1)
    people = [f"p{i // 2}" for i in range(20)]
    seeds = [_sample(rng.normal(1, 1, 20), rng.normal(0, 1, 20), people, people) for _ in "ab"]
    mean = (auc(seeds[0]) + auc(seeds[1])) / 2
    interval = auc_interval(seeds)
    assert interval is not None and interval.low <= mean <= interval.high
    oracles = [_sample(rng.normal(0, 1, 20), rng.normal(0, 1, 20), people, people) for _ in "ab"]
    leak = privleak_interval(list(zip(seeds, oracles, strict=True)))
    value = sum(privleak(auc(s), auc(o)) for s, o in zip(seeds, oracles, strict=True)) / 2
    assert leak is not None and leak.low <= value <= leak.high and leak.low > 0
    # an oracle scored on other people's pairs cannot be paired
    strangers = _sample([0.0] * 20, [0.0] * 20, [f"q{i}" for i in range(20)], people)
    assert privleak_interval([(seeds[0], strangers)]) is None


def test_batched_scores_are_the_models_own_training_loss(small_world, tiny_llava):
    model, processor = tiny_llava
    profile = read_mllmu(small_world / "mllmu", "ft_Data")[0]
    pairs = [
        PairToScore(p.entity_id, k, True, p.question, p.answer, p.image if k % 2 else None)
        for k, p in enumerate(profile_train_pairs(profile)[:6])
    ]
    batched = score_pairs(model, processor, pairs, batch_size=4)
    alone = score_pairs(model, processor, pairs[::-1], batch_size=1)[::-1]
    collator = ChatCollator(processor)
    for pair, score, single in zip(pairs, batched, alone, strict=True):
        assert score.modality == ("multimodal" if pair.image else "text")
        assert score.loss == pytest.approx(single.loss, rel=1e-4)
        assert score.min_k_pp == pytest.approx(single.min_k_pp, rel=1e-3, abs=1e-4)
        batch = collator([pair])
        with torch.no_grad():
            expected = model(**batch).loss.item()  # the mean NLL over the answer tokens
        assert score.loss == pytest.approx(expected, rel=1e-4)
        assert score.tokens == int((batch["labels"] != -100).sum())


def test_encodings_kept_across_states_give_the_same_scores(small_world, tiny_llava):
    model, processor = tiny_llava
    profile = read_mllmu(small_world / "mllmu", "ft_Data")[1]
    pairs = [
        PairToScore(p.entity_id, k, False, p.question, p.answer, p.image if k % 3 else None)
        for k, p in enumerate(profile_train_pairs(profile)[:7])
    ]
    kept = encode_pairs(processor, pairs, 3)
    assert len(kept[1]) == 3 and "labels" in kept[1][0]
    first = score_pairs(model, processor, pairs, batch_size=3, encoded=kept)
    again = score_pairs(model, processor, pairs, batch_size=3, encoded=kept)
    assert again == first == score_pairs(model, processor, pairs, batch_size=3)
