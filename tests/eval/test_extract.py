import pytest

from pulse.eval.extract import explain_choice, extract_choice, mllmu_verdict

OPTS = {"A": "dog", "B": "cat", "C": "a red bird", "D": "none of these"}
NUMS = {"A": "1", "B": "2", "C": "12", "D": "21"}

# (response, options, expected letter, expected rule)
TABLE = [
    ("B", OPTS, "B", "bare"),
    ("(b)", OPTS, "B", "bare"),
    ("C.", OPTS, "C", "bare"),
    ("**D**", OPTS, "D", "bare"),
    ("'C'", OPTS, "C", "bare"),
    ('"A"', OPTS, "A", "bare"),
    ("a", OPTS, "A", "bare"),
    ("Answer: B", OPTS, "B", "letter"),
    ("The answer is C.", OPTS, "C", "letter"),
    ("The answer is (D)", OPTS, "D", "letter"),
    ("B, because it purrs", OPTS, "B", "letter"),
    ("C: a red bird", OPTS, "C", "letter"),
    ("B. A is wrong because dogs bark", OPTS, "B", "leading"),
    ("(C) neither A nor B", OPTS, "C", "leading"),
    ("B, not A", OPTS, "B", "leading"),
    ("A or B", OPTS, None, "ambiguous"),
    ("A and B are both wrong", OPTS, None, "ambiguous"),
    ("I think it is A or B", OPTS, None, "ambiguous"),
    ("Between A and B, the cat", OPTS, None, "ambiguous"),
    ("A is correct", OPTS, "A", "letter"),
    # The article "A": a unique option text overrides it ...
    ("A cat is shown.", OPTS, "B", "text"),
    ("The image is dark.\nA cat sits there.", OPTS, "B", "text"),
    ("A dog.", OPTS, "A", "text"),
    # ... a letter elsewhere too ...
    ("A cat is shown, so the answer is B.", OPTS, "B", "letter"),
    ("A tiny animal. The answer is C.", OPTS, "C", "letter"),
    # ... and without any option text it still counts as A (as MMBench would read it).
    ("A bird sits on a branch.", OPTS, "A", "article"),
    # Mid-sentence, "A" before a lower-case word is a letter.
    ("The answer is A because dogs bark", OPTS, "A", "letter"),
    # Lower-case "a" is never a letter inside a sentence.
    ("a cat, clearly", OPTS, "B", "text"),
    ("It shows a red bird", OPTS, "C", "text"),
    ("I see a dog and a cat", OPTS, None, "ambiguous"),
    # Word boundaries: option "cat" is not found in "category".
    ("The category is unclear", OPTS, None, "none"),
    ("The cats are sleeping", OPTS, None, "none"),
    # Letters glued to words or numbers are not tokens.
    ("Vitamin B-12", OPTS, None, "none"),
    ("A's turn", OPTS, None, "none"),
    ("It is in Washington D.C.", OPTS, None, "ambiguous"),
    # Only valid letters count: "I" is a pronoun here, E is not an option.
    ("I think B", OPTS, "B", "letter"),
    ("E", OPTS, None, "none"),
    ("Option E", {"A": "x", "B": "y"}, None, "none"),
    # Numeric options: the longest covers the shorter only where every mention lies inside it.
    ("There are 12 apples", NUMS, "C", "text"),
    ("There are 2 apples", NUMS, "B", "text"),
    ("12 or 21", NUMS, None, "ambiguous"),
    ("12, not 1", NUMS, None, "ambiguous"),
    # Options with trailing periods and odd spacing.
    ("It is a  Red   Bird", {"A": "A dog.", "B": "A red bird."}, "B", "text"),
    ("", OPTS, None, "none"),
    ("   ", OPTS, None, "none"),
    ("I don't know", OPTS, None, "none"),
]


@pytest.mark.parametrize(("response", "options", "letter", "rule"), TABLE)
def test_extraction_table(response, options, letter, rule):
    got = explain_choice(response, options)
    assert (got.letter, got.rule) == (letter, rule)
    assert extract_choice(response, options) == letter


def test_table_is_large_enough():
    assert len(TABLE) >= 25


def test_blank_options_are_not_choices():
    # An empty option text would be "contained" in every response; its letter is not valid.
    options = {"A": "yes", "B": "no", "C": "", "D": float("nan")}
    assert extract_choice("C", options) is None
    assert extract_choice("no", options) == "B"


def test_identical_option_texts_are_ambiguous():
    assert extract_choice("blue", {"A": "blue", "B": "Blue"}) is None


def test_no_options_is_an_error():
    with pytest.raises(ValueError):
        extract_choice("A", {"A": "", "B": None})


@pytest.mark.parametrize(
    ("response", "gold", "expected"),
    [
        ("B", "B", True),
        ("  b. cat", "B", True),  # the published rule upper-cases the first character
        ("A cat is shown", "B", False),  # ... and reads the article as A
        ("A cat is shown", "A", True),
        ("Answer: B", "B", False),  # first character is "A"
        ("(B)", "B", False),
        ("E", "E", False),  # only A-D
        ("", "A", False),
    ],
)
def test_mllmu_verdict(response, gold, expected):
    assert mllmu_verdict(response, gold) is expected
