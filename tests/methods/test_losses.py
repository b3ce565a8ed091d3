"""Each loss piece equals its value computed by hand (plain Python math) on small tensors."""

from __future__ import annotations

import math

import pytest
import torch

from pulse.methods.losses import (
    answer_lengths,
    dpo_loss,
    kl_ref_theta,
    masked_mse,
    mean_nll,
    npo_loss,
    prediction_mask,
    select_answers,
    sequence_logprob,
    simnpo_loss,
    token_logprobs,
)

X = -100
# Two rows, four positions, a vocabulary of three. Row 0's answer is tokens (1, 2) at positions
# 2-3 (predicted from positions 1-2); row 1's answer is token 0 at position 1 (from position 0);
# the other positions are prompt / padding and must not count.
LABELS = torch.tensor([[X, X, 1, 2], [X, 0, X, X]])
LOGITS = torch.tensor(
    [
        [[9.0, 9.0, 9.0], [0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [9.0, -9.0, 0.0]],
        [[2.0, 0.0, 0.0], [5.0, 5.0, -5.0], [7.0, 1.0, 1.0], [0.0, 0.0, 0.0]],
    ]
)
REF = torch.tensor(
    [
        [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [3.0, 3.0, 3.0]],
        [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0]],
    ]
)
# (row, position, target) of the three answer tokens.
ANSWERS = [(0, 1, 1), (0, 2, 2), (1, 0, 0)]


def log_softmax(row: list[float]) -> list[float]:
    z = math.log(sum(math.exp(v) for v in row))
    return [v - z for v in row]


def hand_logprob(logits, row, pos, target) -> float:
    return log_softmax(logits[row][pos].tolist())[target]


def test_prediction_mask_and_selection_count_answer_tokens_only():
    mask = prediction_mask(LABELS)
    assert mask.tolist() == [[False, True, True, False], [True, False, False, False]]
    a = select_answers(LOGITS, LABELS)
    assert a.targets.tolist() == [1, 2, 0]
    assert a.rows.tolist() == [0, 0, 1]
    assert torch.equal(a.logits, torch.stack([LOGITS[r, p] for r, p, _ in ANSWERS]))
    assert answer_lengths(a).tolist() == [2.0, 1.0]


def test_token_and_sequence_logprobs_and_mean_nll():
    a = select_answers(LOGITS, LABELS)
    hand = [hand_logprob(LOGITS, r, p, t) for r, p, t in ANSWERS]
    assert token_logprobs(a).tolist() == pytest.approx(hand, abs=1e-6)
    assert sequence_logprob(a).tolist() == pytest.approx([hand[0] + hand[1], hand[2]], abs=1e-6)
    assert float(mean_nll(a)) == pytest.approx(-sum(hand) / 3, abs=1e-6)


def test_kl_ref_theta_over_answer_tokens():
    total = 0.0
    for r, p, _ in ANSWERS:
        log_ref = log_softmax(REF[r][p].tolist())
        log_cur = log_softmax(LOGITS[r][p].tolist())
        total += sum(math.exp(lr) * (lr - lc) for lr, lc in zip(log_ref, log_cur, strict=True))
    value = kl_ref_theta(select_answers(REF, LABELS), select_answers(LOGITS, LABELS))
    assert float(value) == pytest.approx(total / 3, abs=1e-6)
    same = kl_ref_theta(select_answers(LOGITS, LABELS), select_answers(LOGITS, LABELS))
    assert float(same) == pytest.approx(0.0, abs=1e-6)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_npo_loss():
    r, beta = [1.0, -2.0], 0.5
    hand = -(2 / beta) * sum(math.log(sigmoid(-beta * v)) for v in r) / 2
    assert float(npo_loss(torch.tensor(r), beta)) == pytest.approx(hand, abs=1e-6)
    # the same as (2/β)·mean log(1 + exp(β r))
    assert hand == pytest.approx((2 / beta) * sum(math.log1p(math.exp(beta * v)) for v in r) / 2)


def test_npo_on_sequence_logprobs_with_masking():
    policy = sequence_logprob(select_answers(LOGITS, LABELS))
    ref = sequence_logprob(select_answers(REF, LABELS))
    hand_pol = [
        hand_logprob(LOGITS, 0, 1, 1) + hand_logprob(LOGITS, 0, 2, 2),
        hand_logprob(LOGITS, 1, 0, 0),
    ]
    hand_ref = [
        hand_logprob(REF, 0, 1, 1) + hand_logprob(REF, 0, 2, 2),
        hand_logprob(REF, 1, 0, 0),
    ]
    beta = 0.1
    hand = -(20 / 2) * sum(
        math.log(sigmoid(-beta * (p - q))) for p, q in zip(hand_pol, hand_ref, strict=True)
    )
    assert float(npo_loss(policy - ref, beta)) == pytest.approx(hand, abs=1e-5)


def test_simnpo_loss_is_length_normalised():
    a = select_answers(LOGITS, LABELS)
    seq = sequence_logprob(a)
    beta, margin = 2.5, 0.3
    lens = [2, 1]
    hand = (
        -(2 / beta)
        * sum(
            math.log(sigmoid(-(beta / n) * s - margin))
            for s, n in zip(seq.tolist(), lens, strict=True)
        )
        / 2
    )
    assert float(simnpo_loss(seq, answer_lengths(a), beta, margin)) == pytest.approx(hand, abs=1e-6)


def test_dpo_loss():
    chosen, rejected, beta = [0.5, -1.0], [2.0, 0.25], 0.1
    hand = (
        -sum(math.log(sigmoid(beta * (c - r))) for c, r in zip(chosen, rejected, strict=True)) / 2
    )
    value = dpo_loss(torch.tensor(chosen), torch.tensor(rejected), beta)
    assert float(value) == pytest.approx(hand, abs=1e-6)


def test_masked_mse_counts_masked_positions_only():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [100.0, 100.0]]])
    mask = torch.tensor([[True, True], [True, False]])
    target = torch.tensor([1.0, 0.0])
    # rows (1,2), (3,4), (0,0) against (1,0): squared errors 0+4, 4+16, 1+0 over 3 × 2 entries
    assert float(masked_mse(hidden, target, mask)) == pytest.approx((4 + 20 + 1) / 6)


def test_ga_gd_and_ga_kl_compositions():
    """GA, GD and GA+KL are signed sums of the pieces above: L_GA = −ℓ(B_f), etc."""
    f = select_answers(LOGITS, LABELS)
    hand_nll = -sum(hand_logprob(LOGITS, r, p, t) for r, p, t in ANSWERS) / 3
    assert float(-mean_nll(f)) == pytest.approx(-hand_nll, abs=1e-6)
    gamma, alpha = 2.0, 0.5
    gd = -gamma * mean_nll(f) + alpha * mean_nll(select_answers(REF, LABELS))
    hand_ref_nll = -sum(hand_logprob(REF, r, p, t) for r, p, t in ANSWERS) / 3
    assert float(gd) == pytest.approx(-gamma * hand_nll + alpha * hand_ref_nll, abs=1e-6)
