import pytest

from pulse.eval.text_metrics import cloze_verdict, normalise_whitespace, rouge_batch, rouge_f1


@pytest.mark.parametrize(
    ("response", "gold", "expected"),
    [
        ("She was born in Lisbon.", "Lisbon", True),
        ("she was born in LISBON", "lisbon", True),
        ("New\n  York City", "new york", True),
        ("  Paris ", "  Paris\t", True),
        ("Lis bon", "Lisbon", False),
        ("Madrid", "Lisbon", False),
        ("in 19901", "1990", True),  # plain substring, as published
        ("", "Lisbon", False),
    ],
)
def test_cloze_verdict(response, gold, expected):
    assert cloze_verdict(response, gold) is expected


def test_cloze_empty_gold_is_an_error():
    with pytest.raises(ValueError):
        cloze_verdict("anything", "  ")


def test_normalise_whitespace():
    assert normalise_whitespace("  a \n\t b  ") == "a b"


def test_rouge_exact_and_disjoint():
    assert rouge_f1("the cat sat", "the cat sat") == pytest.approx(
        {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    )
    assert rouge_f1("dogs bark", "the cat sat") == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}


def test_rouge_uses_stemming_and_known_values():
    # Stemming maps "running" and "runs" to "run": unigrams {he, run, fast} both sides.
    assert rouge_f1("He runs fast", "he running fast")["rouge1"] == pytest.approx(1.0)
    # Reference "a b c d" vs prediction "a b x": P = 2/3, R = 2/4 -> F1 = 4/7.
    got = rouge_f1("alpha beta xray", "alpha beta gamma delta")
    assert got["rouge1"] == pytest.approx(4 / 7)
    # Bigrams: 1 shared ("alpha beta") of 2 predicted and 3 reference -> 2PR/(P+R) = 0.4.
    assert got["rouge2"] == pytest.approx(0.4)
    assert got["rougeL"] == pytest.approx(4 / 7)


def test_rouge_l_is_order_sensitive():
    # LCS of "c b a" vs "a b c" is 1 token; unigram overlap is complete.
    got = rouge_f1("gamma beta alpha", "alpha beta gamma")
    assert got["rouge1"] == pytest.approx(1.0)
    assert got["rougeL"] == pytest.approx(1 / 3)


def test_rouge_batch_means():
    result = rouge_batch(["the cat sat", "dogs bark"], ["the cat sat", "the cat sat"])
    assert [r["rouge1"] for r in result.per_item] == pytest.approx([1.0, 0.0])
    assert result.mean == pytest.approx({"rouge1": 0.5, "rouge2": 0.5, "rougeL": 0.5})
    assert rouge_batch([], []).mean == {"rouge1": None, "rouge2": None, "rougeL": None}
    with pytest.raises(ValueError):
        rouge_batch(["a"], [])
