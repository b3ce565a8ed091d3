import math

import pytest
import torch

from pulse.eval.scoring import (
    answer_logprob,
    score_letter_logits,
    score_option_texts,
    token_logprobs,
)

# Vocabulary of 8 tokens; letters A-D are tokens 2-5.
IDS4 = {"A": 2, "B": 3, "C": 4, "D": 5}


def test_letter_verdicts_with_mixed_option_counts():
    logits = torch.full((3, 8), -5.0)
    logits[0, [2, 3, 4, 5]] = torch.tensor([0.0, 3.0, 1.0, 0.0])  # B
    logits[1, [2, 3]] = torch.tensor([1.0, 0.0])  # 2 options: A
    logits[1, 4] = 10.0  # mass on "C" must not matter for a 2-option item
    logits[2, [2, 3, 4]] = torch.tensor([0.0, 0.0, 2.0])  # 3 options: C
    ids = [IDS4, {"A": 2, "B": 3}, {"A": 2, "B": 3, "C": 4}]
    got = score_letter_logits(logits, ids, gold=["B", "B", "C"])
    assert got.predicted == ["B", "A", "C"]
    assert got.correct == [True, False, True]
    assert set(got.log_probs[1]) == {"A", "B"}
    # Normalised over the item's own letters: log p = z - logsumexp(z_valid).
    assert got.log_probs[1]["A"] == pytest.approx(1.0 - math.log(math.e + 1.0))
    for lp in got.log_probs:
        assert sum(math.exp(v) for v in lp.values()) == pytest.approx(1.0)


def test_letter_ties_go_to_the_first_letter():
    logits = torch.zeros((2, 8))
    logits[1, [3, 5]] = 4.0  # B and D tie at the top
    got = score_letter_logits(logits, [IDS4, IDS4], gold=["A", "D"])
    assert got.predicted == ["A", "B"]
    assert got.correct == [True, False]
    assert got.log_probs[0] == pytest.approx({k: math.log(0.25) for k in "ABCD"})


def test_letter_order_in_mapping_does_not_matter():
    logits = torch.zeros((1, 8))
    logits[0, 4] = logits[0, 2] = 1.0  # A and C tie
    got = score_letter_logits(logits, [{"C": 4, "A": 2, "B": 3}])
    assert got.predicted == ["A"]
    assert got.correct is None
    assert list(got.log_probs[0]) == ["A", "B", "C"]


def test_bfloat16_logits():
    logits = torch.zeros((1, 8), dtype=torch.bfloat16)
    logits[0, 3] = 2.0
    assert score_letter_logits(logits, [IDS4]).predicted == ["B"]


@pytest.mark.parametrize(
    ("ids", "gold", "message"),
    [
        ([{}], None, "no option letters"),
        ([{"A": 2, "B": 2}], None, "share a token"),
        ([{"A": 2, "B": 99}], None, "outside the vocabulary"),
        ([IDS4], ["E"], "gold letter"),
        ([IDS4, IDS4], None, "2 items"),
    ],
)
def test_letter_bad_input(ids, gold, message):
    with pytest.raises(ValueError, match=message):
        score_letter_logits(torch.zeros((1, 8)), ids, gold=gold)


def test_token_logprobs_are_shifted():
    # Row 0 of logits predicts token 1, and so on.
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]]]))
    ids = torch.tensor([[0, 1, 2]])
    lp = token_logprobs(logits, ids)
    assert lp.shape == (1, 3)
    assert lp[0].tolist() == pytest.approx([0.0, math.log(0.25), math.log(0.8)])


def test_answer_logprob_counts_masked_tokens_only():
    lp = torch.tensor([[0.0, -9.0, -1.0, -3.0, -100.0], [0.0, -50.0, -50.0, -2.0, 0.0]])
    mask = torch.tensor([[0, 0, 1, 1, 0], [0, 0, 0, 1, 0]])
    assert answer_logprob(lp, mask).tolist() == pytest.approx([-2.0, -2.0])
    assert answer_logprob(lp, mask, normalise=False).tolist() == pytest.approx([-4.0, -2.0])
    with pytest.raises(ValueError, match="no answer tokens"):
        answer_logprob(lp, torch.zeros_like(mask))
    with pytest.raises(ValueError, match="position 0"):
        answer_logprob(lp, torch.ones_like(mask))


def test_option_text_verdicts():
    # Length normalisation: a long option with a higher mean beats a short one with a higher sum.
    scores = [
        {"A": -1.5, "B": -0.5, "C": -2.0},
        {"A": -1.0, "B": -1.0},  # tie -> A
        {"D": -0.1, "C": -0.2, "B": -3.0, "A": -3.0},
    ]
    got = score_option_texts(scores, gold=["B", "B", "C"])
    assert got.predicted == ["B", "A", "D"]
    assert got.correct == [True, False, False]
    assert got.log_probs[1] == pytest.approx({"A": math.log(0.5), "B": math.log(0.5)})
    assert list(got.log_probs[2]) == ["A", "B", "C", "D"]


def test_end_to_end_option_text_from_logits():
    # Two options as answers of 1 and 2 tokens after a 2-token prompt; vocab of 4.
    probs = torch.tensor(
        [
            [[0.25] * 4, [0.1, 0.6, 0.2, 0.1], [0.25] * 4, [0.25] * 4],  # option A: token 1
            [[0.25] * 4, [0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.1, 0.7], [0.25] * 4],  # B: 2, 3
        ]
    )
    ids = torch.tensor([[0, 0, 1, 0], [0, 0, 2, 3]])  # last token of row 0 is padding
    mask = torch.tensor([[0, 0, 1, 0], [0, 0, 1, 1]])
    mean = answer_logprob(token_logprobs(probs.log(), ids), mask)
    assert mean.tolist() == pytest.approx([math.log(0.6), math.log(0.7)])
    got = score_option_texts([{"A": mean[0].item(), "B": mean[1].item()}], gold=["B"])
    assert got.predicted == ["B"] and got.correct == [True]
