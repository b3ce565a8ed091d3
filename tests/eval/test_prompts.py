import math

import pytest

from pulse.eval.prompts import (
    FewShotExample,
    cloze_prompt,
    generation_prompt,
    mcq_prompt,
    mllmu_prompt,
    mmbench_prompt,
)

OPTS = {"A": "red", "B": "green", "C": "blue", "D": "black"}


def test_mmbench_prompt_with_hint():
    got = mmbench_prompt("What colour is the car?", OPTS, hint="Look at the left side.")
    assert got == (
        "Look at the left side.\n"
        "What colour is the car?\n"
        "A. red\nB. green\nC. blue\nD. black\n"
        "Answer with the option's letter from the given choices directly."
    )


@pytest.mark.parametrize("hint", [None, "", "   ", math.nan, "nan", "NaN", "None"])
def test_mmbench_prompt_blank_hint_is_omitted(hint):
    assert mmbench_prompt("Q?", {"A": "x", "B": "y"}, hint=hint) == (
        "Q?\nA. x\nB. y\nAnswer with the option's letter from the given choices directly."
    )


def test_mmbench_prompt_drops_blank_options_and_sorts_letters():
    options = {"B": "no", "A": "yes", "C": math.nan, "D": ""}
    assert mmbench_prompt("Is it raining?", options) == (
        "Is it raining?\nA. yes\nB. no\n"
        "Answer with the option's letter from the given choices directly."
    )


def test_option_text_none_is_kept():
    # "None" is a real answer text; only the hint treats it as missing.
    assert "C. None" in mmbench_prompt("Q?", {"A": "x", "B": "y", "C": "None"})


def test_numeric_option_values_are_rejected():
    with pytest.raises(TypeError):
        mmbench_prompt("Q?", {"A": 2.0, "B": "3"})


def test_default_mcq_prompt():
    assert mcq_prompt("Where was she born?", {"A": "Oslo", "B": "Lima", "C": "Pune"}) == (
        "Where was she born?\nA. Oslo\nB. Lima\nC. Pune\n"
        "Answer with the option's letter from the given choices directly."
    )


POOL = [
    FewShotExample(
        "What is her job?", {"A": "cook", "B": "pilot", "C": "nurse", "D": "judge"}, "B", id="p1"
    ),
    FewShotExample(
        "Where does he live?", {"A": "Rome", "B": "Kyiv", "C": "Baku", "D": "Riga"}, "D", id="p2"
    ),
    FewShotExample(
        "What is his hobby?", {"A": "chess", "B": "golf", "C": "judo", "D": "yoga"}, "A", id="p3"
    ),
]


def test_mllmu_prompt_exact_layout():
    got = mllmu_prompt(
        "What is her age?",
        {"A": "20", "B": "30", "C": "40", "D": "50"},
        pool=POOL[:1],
        seed=0,
        key="item-1",
    )
    assert got == (
        "Question: What is her job?\nA: cook\nB: pilot\nC: nurse\nD: judge\n"
        "Correct Answer: B\n"
        "What is her age?\nA: 20\nB: 30\nC: 40\nD: 50\n"
        "Just give ONE letter representing the answer directly."
    )


def test_mllmu_prompt_zero_shots():
    assert mllmu_prompt("Q?", {"A": "x", "B": "y"}, pool=[], seed=0, key="k", shots=0) == (
        "Q?\nA: x\nB: y\nJust give ONE letter representing the answer directly."
    )


def test_mllmu_draw_is_seeded_per_item_and_ignores_pool_order():
    def draw(pool, seed, key):
        return mllmu_prompt("Q?", {"A": "x", "B": "y"}, pool=pool, seed=seed, key=key)

    first = draw(POOL, 0, "item-1")
    assert draw(list(reversed(POOL)), 0, "item-1") == first
    # Different keys / seeds reach different examples (not all draws can coincide).
    draws = {draw(POOL, seed, key) for seed in range(3) for key in ("a", "b", "c", "d")}
    assert len(draws) > 1


def test_mllmu_never_draws_the_question_itself():
    for seed in range(20):
        got = mllmu_prompt(POOL[0].question, POOL[0].options, pool=POOL[:2], seed=seed, key="k")
        assert got.startswith("Question: Where does he live?")


def test_mllmu_pool_too_small():
    with pytest.raises(ValueError, match="few-shot pool"):
        mllmu_prompt(POOL[0].question, POOL[0].options, pool=POOL[:1], seed=0, key="k")


def test_mllmu_draw_is_pinned():
    # The same (seed, key) must give the same example in every process and release; a change
    # here silently changes every published number of the mllmu profile.
    firsts = [
        mllmu_prompt("Q?", {"A": "x", "B": "y"}, pool=POOL, seed=7, key=k).splitlines()[0]
        for k in ("item-1", "item-2", "item-3")
    ]
    assert firsts == [
        "Question: What is her job?",
        "Question: Where does he live?",
        "Question: What is her job?",
    ]


def test_mllmu_open_question_prompts():
    assert cloze_prompt("Ann Lee was born in __.") == (
        "Ann Lee was born in [Blank].\n"
        "Please **ONLY** provide the correct answer that should replace the [Blank]."
    )
    assert generation_prompt("Who is this?", "multimodal") == (
        "Who is this?\n"
        "Answer the question based on your trained knowledge in one sentence accurately in ENGLISH."
    )
    assert generation_prompt("Who is Ann Lee?", "text").endswith("in one sentence in ENGLISH.")
    with pytest.raises(ValueError, match="multimodal or text"):
        generation_prompt("Who?", "audio")
