"""The reading opens with a verdict per scenario against its oracle, and never ranks a state
as forgetting the most when it fell below the oracle without saying so (hand-made rows)."""

from __future__ import annotations

from pulse.protocol.results import ResultRow
from pulse.report.reading import build_reading
from pulse.report.tables import build_tables

from .conftest import before, mcq

FT, PT, SC = "finetuned", "pretrained", "scope"
ZERO = (0.0, 0.0, 0.0)


def versus(
    kind: str,
    method: str,
    forget: tuple,
    quality: tuple,
    retain: tuple = ZERO,
    setting: str = "",
) -> list[ResultRow]:
    """Rows versus the oracle for one state: the distance (value, low, high) on forget and
    retain, the same in both modalities, and forget quality per modality."""
    request = 0 if method in ("before", "oracle") else 1
    rows = []
    for split, (value, low, high) in (("forget", forget), ("retain", retain)):
        for modality in ("multimodal", "text"):
            cell = (kind, kind, method, setting, request, 1, split, modality, "oracle_distance")
            rows.append(ResultRow(*cell, value, 10, low=low, high=high))
    for modality, value in zip(("multimodal", "text"), quality, strict=True):
        cell = (kind, kind, method, setting, request, 1, "forget", modality, "forget_quality")
        rows.append(ResultRow(*cell, value, 10))
    return rows


def with_oracle(kind: str = FT) -> list[ResultRow]:
    """Before at 80 %, the oracle at 30 % forget / 78 % retain. ``ga`` falls to 10 % with
    retain kept like the oracle's (over-forgets, retain alike), ``npo`` lands on the oracle,
    ``ga_kl`` keeps 60 %, ``rmu`` falls below the oracle and loses the retain set too."""
    rows = before(kind, kind, forget=(0.80, 0.80), retain=(0.79, 0.79), general=0.75)
    rows += mcq(
        kind, kind, "oracle", "", 0, 1, forget=(0.30, 0.30), retain=(0.78, 0.78), general=0.74
    )
    rows += versus(kind, "oracle", ZERO, (1.0, 1.0))
    rows += mcq(kind, kind, "ga", forget=(0.10, 0.10), retain=(0.77, 0.77), general=0.74)
    rows += versus(kind, "ga", (-0.2, -0.28, -0.12), (0.001, 0.002), (-0.01, -0.05, 0.03))
    rows += mcq(kind, kind, "npo", forget=(0.31, 0.29), retain=(0.70, 0.72), general=0.70)
    rows += versus(kind, "npo", (0.0, -0.08, 0.08), (0.6, 0.4), (-0.07, -0.12, -0.02))
    rows += mcq(kind, kind, "ga_kl", forget=(0.60, 0.60), retain=(0.75, 0.75), general=0.72)
    rows += versus(kind, "ga_kl", (0.3, 0.2, 0.4), (0.02, 0.03), (-0.03, -0.08, 0.02))
    rows += mcq(kind, kind, "rmu", forget=(0.20, 0.20), retain=(0.30, 0.30), general=0.40)
    rows += versus(kind, "rmu", (-0.1, -0.18, -0.02), (0.01, 0.01), (-0.48, -0.55, -0.4))
    return rows


def _reading(rows: list[ResultRow]) -> list[str]:
    return build_reading(build_tables(rows))


def test_the_reading_opens_with_the_verdict():
    reading = _reading(with_oracle())
    first = reading[0]
    assert first.startswith("Verdict in finetuned, against the oracle: ")
    assert "ga over-forgets (20.0 points below the oracle, retain alike the oracle's)" in first
    assert (
        "npo forgets to the oracle's level, indistinguishable from the oracle by KS at 0.05"
        in first
    )
    assert "ga_kl not yet forgotten (30.0 points above the oracle)" in first
    assert "rmu over-forgets (10.0 points below the oracle, retain below it too)" in first
    # Methods only: before is placed against the oracle further on, not in the verdict.
    assert "before" not in first
    assert sum(s.startswith("Verdict") for s in reading) == 1


def test_a_state_at_the_oracles_level_that_ks_tells_apart_says_so():
    rows = [r for r in with_oracle() if not (r.method == "npo" and r.metric == "forget_quality")]
    rows += versus(FT, "npo", (0.0, -0.08, 0.08), (0.01, 0.3))[-2:]
    first = _reading(rows)[0]
    assert "npo forgets to the oracle's level, though told apart from it by KS at 0.05" in first


def test_forgets_the_most_below_the_oracle_with_retain_alike_is_called_over_forgetting():
    reading = _reading(with_oracle())
    (most,) = [s for s in reading if "forgets the most:" in s]
    assert most.startswith("In finetuned, ga forgets the most")
    assert "20.0 points below the oracle" in most and "it over-forgets" in most
    assert "retain accuracy alike the oracle's" in most
    assert "worse than a model that never learned them" in most


def test_forgets_the_most_below_the_oracle_with_retain_lost_says_that_too():
    rows = [r for r in with_oracle() if r.method not in ("ga", "npo")]  # rmu leads
    (most,) = [s for s in _reading(rows) if "forgets the most:" in s]
    assert most.startswith("In finetuned, rmu forgets the most")
    assert "over-forgets, and with its retain accuracy 48.0 points below the oracle's too" in most


def test_forgetting_per_point_of_general_capability_below_the_oracle_says_so():
    (per_point,) = [s for s in _reading(with_oracle()) if "per point of general" in s]
    assert per_point.startswith("In finetuned, ga forgets the most per point")
    assert per_point.endswith("; it over-forgets (20.0 points below the oracle).")


def test_the_scope_ablations_leader_below_the_oracle_says_so():
    rows = before(SC, SC, forget=(0.80, 0.80), retain=(0.79, 0.79), general=0.75)
    rows += mcq(SC, SC, "oracle", "", 0, 1, forget=(0.30, 0.30), retain=(0.78, 0.78), general=0.74)
    rows += versus(SC, "oracle", ZERO, (1.0, 1.0))
    for scope, forget, distance in (("llm", 0.35, 0.05), ("projector+llm", 0.12, -0.18)):
        rows += mcq(SC, SC, "ga", scope, forget=(forget, forget), retain=(0.7, 0.7), general=0.7)
        rows += versus(
            SC, "ga", (distance, distance - 0.05, distance + 0.05), (0.3, 0.3), setting=scope
        )
    reading = _reading(rows)
    assert reading[0].startswith("Verdict in scope, against the oracle: ga · llm ")
    assert "ga · projector+llm over-forgets" in reading[0]
    (scope,) = [s for s in reading if "forgets most" in s]
    assert (
        "updating projector+llm forgets most" in scope and "18.0 points below the oracle" in scope
    )


def test_every_table_opens_with_its_verdict_or_why_it_has_none():
    rows = with_oracle(FT) + [r for r in with_oracle(PT) if r.method != "oracle"]
    rows = [
        r for r in rows if r.kind == FT or r.metric not in ("oracle_distance", "forget_quality")
    ]
    reading = _reading(rows)
    assert reading[0].startswith("Verdict in finetuned")
    assert reading[1].startswith("In pretrained there is no oracle row")
    assert "scenarios.pretrained.oracle" in reading[1]
    assert not any("there is no oracle" in s for s in reading[2:])
    assert not any("pretrained" in s and "Against the oracle" in s for s in reading)
