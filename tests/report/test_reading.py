"""The automatic reading names the method the numbers point to, and changes when they change."""

from __future__ import annotations

from dataclasses import replace

from pulse.protocol.results import ResultRow
from pulse.report.reading import build_reading
from pulse.report.tables import build_tables

from .conftest import before, full_rows, mcq


def reading(rows) -> list[str]:
    return build_reading(build_tables(rows))


def sentence(sentences: list[str], *words: str) -> str:
    (found,) = [s for s in sentences if all(w in s for w in words)]
    return found


def test_forgets_most_and_per_point_of_general_capability_lost():
    sentences = reading(full_rows())
    assert "In finetuned, ga forgets the most:" in sentence(
        sentences, "finetuned", "forgets the most:"
    )
    # ga_kl: 39 points forgotten for 5 lost (7.80); ga: 54 for 30 (1.80).
    per_point = sentence(sentences, "In finetuned", "per point")
    assert per_point.startswith("In finetuned, ga_kl forgets the most per point")
    assert "7.80 points" in per_point and "against 1.80 for ga" in per_point
    # The diverged npo takes part in no comparison.
    assert not any("npo" in s for s in sentences if "finetuned" in s)


def test_per_point_follows_the_numbers():
    ft = "finetuned"
    rows = before(ft, ft, forget=(0.8, 0.8), retain=(0.8, 0.8), general=0.8)
    rows += mcq(ft, ft, "ga", forget=(0.2, 0.2), retain=(0.5, 0.5), general=0.7)  # 60 for 10
    rows += mcq(ft, ft, "npo", forget=(0.5, 0.5), retain=(0.7, 0.7), general=0.7)  # 30 for 10
    per_point = sentence(reading(rows), "per point")
    assert per_point.startswith("In finetuned, ga forgets the most per point")
    assert "6.00 points" in per_point and "against 3.00 for npo" in per_point


def test_a_method_that_keeps_general_capability_is_named_as_such():
    ft = "finetuned"
    rows = before(ft, ft, forget=(0.8, 0.8), retain=(0.8, 0.8), general=0.8)
    rows += mcq(ft, ft, "ga", forget=(0.1, 0.1), retain=(0.5, 0.5), general=0.5)
    rows += mcq(ft, ft, "npo", forget=(0.4, 0.4), retain=(0.7, 0.7), general=0.81)
    kept = sentence(reading(rows), "keeping its general capability")
    assert kept.startswith("In finetuned, npo forgets 40.0 points")


def test_modality_gap_counts_methods_and_names_the_widest():
    modality = sentence(reading(full_rows()), "In pretrained", "multimodal forget accuracy")
    assert "for 3 of 3 methods" in modality
    assert "the widest gap is npo: 70.0 points multimodal against 35.0 points text-only" in modality


def test_sequential_against_batch_states_the_gap():
    sentences = reading(full_rows())
    ga = sentence(sentences, "After 3 sequential requests, ga keeps")
    assert "20.0% general capability against 50.0%" in ga and "(-30.0 points)" in ga


def with_intervals(rows, half_width):
    """Every accuracy and general-capability row with a 95 % interval of ±``half_width``."""
    return [
        replace(r, low=r.value - half_width, high=r.value + half_width)
        if r.metric in ("accuracy", "circular")
        else r
        for r in rows
    ]


def test_comparisons_within_the_intervals_say_so():
    # ga: general 20 % sequentially against 50 % in one batch; multimodal forget 10 % vs 12 %.
    narrow = reading(with_intervals(full_rows(), 0.005))
    assert "overlap" not in sentence(narrow, "After 3 sequential requests, ga keeps")
    forget = sentence(narrow, "ends at 10.0% sequentially")
    assert forget.endswith("against 12.0% in one batch.")
    wide = reading(with_intervals(full_rows(), 0.02))
    assert "overlap" not in sentence(wide, "After 3 sequential requests, ga keeps")
    ga_kl = sentence(wide, "After 3 sequential requests, ga_kl keeps", "general")  # 68 vs 70 %
    assert ga_kl.endswith("(-2.0 points; their 95 % intervals overlap).")
    forget = sentence(wide, "ends at 10.0% sequentially")
    assert forget.endswith("in one batch (their 95 % intervals overlap).")
    # Scope: projector+llm forgets most (10 % against llm's 25 %), keeps the most general
    # capability (71 % against 49 %); ±10 points overlap on forgetting only.
    scope = sentence(reading(with_intervals(full_rows(), 0.10)), "For ga in scope")
    assert "(multimodal 10.0%; its 95 % interval overlaps llm's)" in scope
    assert "general capability (71.0%)." in scope
    # Rows without intervals (earlier versions) make no such note.
    assert not any("interval" in s for s in reading(full_rows()))


def test_a_general_loss_within_its_paired_interval_counts_as_kept():
    ft = "finetuned"
    rows = before(ft, ft, forget=(0.8, 0.8), retain=(0.8, 0.8), general=0.8)
    rows += mcq(ft, ft, "ga", forget=(0.2, 0.2), retain=(0.5, 0.5), general=0.7)  # 60 for 10
    rows += mcq(ft, ft, "npo", forget=(0.5, 0.5), retain=(0.7, 0.7), general=0.78)  # 30 for 2
    # Without intervals a 2-point loss makes npo the leader per point (15.00 against 6.00).
    assert "npo forgets the most per point" in sentence(reading(rows), "per point")

    def npo_general(low, high):
        return [
            replace(r, change_low=low, change_high=high)
            if r.method == "npo" and r.metric == "circular"
            else r
            for r in rows
        ]

    kept = sentence(reading(npo_general(-0.05, 0.01)), "while keeping")
    assert kept == (
        "In finetuned, npo forgets 30.0 points while keeping its general capability "
        "(change -2.0 points; 95 % interval -5.0 to +1.0)."
    )
    # An interval below zero: the loss is measured, the ratio stands.
    assert "per point" in " ".join(reading(npo_general(-0.04, -0.005)))


def test_a_leader_within_the_runner_ups_intervals_says_so():
    lead = "In finetuned, ga forgets the most"
    assert sentence(reading(with_intervals(full_rows(), 0.005)), lead).endswith("questions.")
    wide = sentence(reading(with_intervals(full_rows(), 0.2)), lead)
    assert wide.endswith("questions (its 95 % intervals overlap ga_kl's in both modalities).")
    retain = sentence(reading(with_intervals(full_rows(), 0.2)), "most retain", "finetuned")
    assert retain.startswith("ga_kl keeps") and "overlap ga's" in retain


def test_the_paired_sequential_gap_replaces_the_overlap_note():
    def gap(split, modality, value, low, high):
        return ResultRow(
            "sequential", "sequential", "ga", "sequential", 3, 3, split, modality, "gap", value,
            10, low=low, high=high,
        )  # fmt: skip

    rows = with_intervals(full_rows(), 0.02)  # the marginal intervals overlap on forgetting
    rows += [
        gap("general", "all", -0.30, -0.38, -0.22),
        gap("forget", "multimodal", -0.02, -0.06, 0.02),
    ]
    sentences = reading(rows)
    general = sentence(sentences, "After 3 sequential requests, ga keeps")
    assert general.endswith(
        "(-30.0 points; paired 95 % interval of the gap -38.0 to -22.0 points: "
        "a measured difference)."
    )
    forget = sentence(sentences, "ends at 10.0% sequentially")
    assert forget.endswith(
        "in one batch (paired 95 % interval of the gap -6.0 to +2.0 points: within noise)."
    )
    # The gap rows are not table columns: the table is the same without them.
    assert build_tables(rows)[2].rows == build_tables(rows[:-2])[2].rows


def test_an_interrupted_sequential_chain_is_said_to_be_incomplete():
    rows = [
        r
        for r in full_rows()
        if not (r.scenario == "sequential" and r.method == "ga_kl" and r.request == 3)
    ]
    sentences = reading(rows)
    assert sentence(sentences, "ga_kl has no result after request 3 of 3")
    assert not any(s.startswith("After 3 sequential requests, ga_kl") for s in sentences)


def test_scope_pebench_and_knowledge_source_sentences():
    sentences = reading(full_rows())
    scope = sentence(sentences, "For ga in scope")
    assert "updating projector+llm forgets most (multimodal 10.0%)" in scope
    assert "projector+llm keeps the most general capability (71.0%)" in scope
    person = sentence(sentences, "person target")
    assert "ga reaches the highest efficacy (95.0%)" in person
    source = sentence(sentences, "pre-trained knowledge costs more")
    assert "for 2 of 2 methods" in source


def test_no_results_no_sentences():
    assert reading([]) == []


def test_ties_and_no_change_make_no_claim_of_a_leader():
    ft, sc = "finetuned", "scope"
    values = {"forget": (0.3, 0.3), "retain": (0.3, 0.3), "general": 0.1}
    rows = before(ft, ft, **values) + before(sc, sc, **values)
    for method in ("ga", "npo"):
        rows += mcq(ft, ft, method, **values)
        for scope in ("llm", "projector+llm"):
            rows += mcq(sc, sc, method, scope, **values)
    sentences = reading(rows)
    assert "In finetuned, no method lowers forget accuracy." in sentences
    assert (
        "In finetuned, forget accuracy changes by the same amount in both modalities." in sentences
    )
    assert not any("the most" in s or "forgets most" in s for s in sentences)


def test_a_forget_set_known_only_at_chance_is_flagged():
    from pulse.protocol.results import ResultRow

    ft = "finetuned"

    def chance_row(value):
        return ResultRow(ft, ft, "before", "", 0, 1, "forget", "all", "chance", value, 40)

    rows = before(ft, ft, forget=(0.28, 0.26), retain=(0.3, 0.3), general=0.2)
    rows += mcq(ft, ft, "ga", forget=(0.24, 0.25), retain=(0.2, 0.2), general=0.0)
    flagged = sentence(reading([*rows, chance_row(0.25)]), "guessing")
    assert flagged.startswith("In finetuned, the model answers the forget set at 27.0% before")
    assert "(25.0%)" in flagged
    # Well above guessing, or no chance row: no such sentence.
    known = before(ft, ft, forget=(0.8, 0.8), retain=(0.8, 0.8), general=0.8)
    known += mcq(ft, ft, "ga", forget=(0.2, 0.3), retain=(0.7, 0.7), general=0.7)
    assert not [s for s in reading([*known, chance_row(0.25)]) if "guessing" in s]
    assert not [s for s in reading(rows) if "guessing" in s]


def contrast(split, modality, value, low, high, method="ga", versus="ga_kl"):
    return ResultRow(
        "finetuned", "finetuned", method, "", 1, 1, split, modality, "contrast", value, 10,
        low=low, high=high, versus=versus,
    )  # fmt: skip


def test_paired_contrasts_decide_whether_a_leader_stands_out():
    # ga forgets the most in finetuned, ga_kl is the runner-up; ga_kl keeps the most retain
    # accuracy. The contrast rows are stored as ga minus ga_kl: the retain claim reads them
    # the other way round.
    rows = with_intervals(full_rows(), 0.2)  # marginal intervals that overlap everywhere
    clear = [
        contrast("forget", "multimodal", -0.20, -0.30, -0.10),
        contrast("forget", "text", -0.10, -0.18, -0.02),
        contrast("retain", "multimodal", -0.40, -0.50, -0.30),
        contrast("retain", "text", -0.22, -0.30, -0.14),
    ]
    sentences = reading(rows + clear)
    lead = sentence(sentences, "In finetuned, ga forgets the most")
    assert lead.endswith(
        "(a measured difference: the paired 95 % interval of its difference to ga_kl leaves "
        "zero in both modalities)."
    )
    retain = sentence(sentences, "keeps the most retain accuracy in finetuned")
    assert retain.startswith("ga_kl keeps") and retain.endswith(
        "to ga leaves zero in both modalities)."
    )
    noisy = [*clear[:1], contrast("forget", "text", -0.10, -0.18, 0.02), *clear[2:]]
    lead = sentence(reading(rows + noisy), "In finetuned, ga forgets the most")
    assert lead.endswith(
        "(within noise of ga_kl: the paired 95 % interval of their difference holds zero in "
        "text-only)."
    )
    # Without contrasts the marginal intervals speak, as before.
    lead = sentence(reading(rows), "In finetuned, ga forgets the most")
    assert lead.endswith("(its 95 % intervals overlap ga_kl's in both modalities).")


def test_the_scope_leader_is_stated_with_the_paired_difference_between_scopes():
    # Stored as llm minus projector+llm for ga; projector+llm leads, so the note turns it.
    def scoped(split, modality, metric, value, low, high):
        return ResultRow(
            "scope", "scope", "ga", "llm", 1, 1, split, modality, "contrast", value, 10,
            low=low, high=high, versus="projector+llm",
        )  # fmt: skip

    rows = [
        *with_intervals(full_rows(), 0.10),
        scoped("forget", "multimodal", "contrast", 0.15, 0.05, 0.25),
        scoped("general", "all", "contrast", -0.22, -0.30, 0.01),
    ]
    scope = sentence(reading(rows), "For ga in scope")
    assert (
        "updating projector+llm forgets most (multimodal 10.0%; paired 95 % interval of the "
        "difference to llm -25.0 to -5.0 points: a measured difference)"
    ) in scope
    assert (
        "projector+llm keeps the most general capability (71.0%; paired 95 % interval of the "
        "difference to llm -1.0 to +30.0 points: within noise)"
    ) in scope


def test_the_ends_of_the_sequential_chains_are_compared():
    # After 3 requests: ga's forget accuracy 10 % / 40 %, ga_kl's higher; ga_kl keeps more
    # retain accuracy. Without contrasts the marginal intervals speak; with them, the paired one.
    sentences = reading(full_rows())
    forgot = sentence(sentences, "After 3 sequential requests", "has forgotten the most")
    assert forgot.startswith("After 3 sequential requests, ga has forgotten the most")
    kept = sentence(sentences, "After 3 sequential requests", "keeps the most retain accuracy")
    assert kept.startswith("After 3 sequential requests, ga_kl keeps the most retain accuracy")

    def end(split, modality, value, low, high):
        return ResultRow(
            "sequential", "sequential", "ga", "sequential", 3, 3, split, modality, "contrast",
            value, 10, low=low, high=high, versus="ga_kl",
        )  # fmt: skip

    rows = [
        *full_rows(),
        end("forget", "multimodal", -0.2, -0.3, -0.1),
        end("forget", "text", -0.1, -0.2, 0.05),
    ]
    forgot = sentence(reading(rows), "After 3 sequential requests", "has forgotten the most")
    assert forgot.endswith(
        "(within noise of ga_kl: the paired 95 % interval of their difference holds zero in "
        "text-only)."
    )
