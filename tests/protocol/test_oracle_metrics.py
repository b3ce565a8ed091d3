"""Truth ratio, forget quality and distance to the oracle on hand-made numbers, checked against
computations of their own; rows versus the oracle only where there is one."""

from __future__ import annotations

import itertools
import math

import pytest

from pulse.data.schema import ItemKind, Modality
from pulse.eval.records import ItemRecord
from pulse.protocol.cells import CellId
from pulse.protocol.measure import metric_rows
from pulse.protocol.measurement import Measurement
from pulse.protocol.metrics.forget_quality import forget_quality
from pulse.protocol.metrics.truth_ratio import log_truth_ratio, truth_ratio


def test_truth_ratio_is_the_wrong_options_geometric_mean_over_the_correct():
    probs = {"A": 0.5, "B": 0.2, "C": 0.1, "D": 0.4}
    expected = (0.2 * 0.1 * 0.4) ** (1 / 3) / 0.5
    logprobs = {k: math.log(v) for k, v in probs.items()}
    assert truth_ratio(logprobs, "A") == pytest.approx(expected)
    assert truth_ratio(logprobs, "C") == pytest.approx((0.5 * 0.2 * 0.4) ** (1 / 3) / 0.1)
    with pytest.raises(ValueError):
        truth_ratio({"A": 0.0}, "A")


def _exact_ks_pvalue(a: list[float], b: list[float]) -> float:
    """Two-sided KS p-value by enumerating every split of the pooled values (no ties)."""

    def statistic(x, y):
        points = sorted(x + y)
        return max(
            abs(sum(v <= t for v in x) / len(x) - sum(v <= t for v in y) / len(y)) for t in points
        )

    observed = statistic(a, b)
    pooled = a + b
    splits = list(itertools.combinations(range(len(pooled)), len(a)))
    extreme = 0
    for chosen in splits:
        x = [pooled[i] for i in chosen]
        y = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        extreme += statistic(x, y) >= observed - 1e-12
    return extreme / len(splits)


@pytest.mark.parametrize(
    "state, oracle",
    [
        ([0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]),
        ([0.1, 0.55, 0.3, 0.9], [0.5, 0.6, 0.7, 0.8, 0.95]),
        ([0.05, 0.2, 0.65], [0.1, 0.3, 0.5, 0.7]),
    ],
)
def test_forget_quality_is_the_exact_ks_pvalue(state, oracle):
    assert forget_quality(state, oracle) == pytest.approx(_exact_ks_pvalue(state, oracle))


def _record(person: str, k: int, modality: Modality, correct_lp: float) -> ItemRecord:
    scores = {"A": correct_lp, "B": -2.0, "C": -2.5, "D": -3.0}
    predicted = max(scores, key=scores.__getitem__)
    return ItemRecord(
        f"{person}-{modality.value}-{k}",
        person,
        ItemKind.MCQ,
        modality,
        predicted,
        "A",
        predicted == "A",
        extras={"mean_logprobs": scores},
    )


def _measurement(knows: dict[str, float]) -> Measurement:
    records = [
        _record(person, k, modality, lp + 0.1 * k)
        for person, lp in knows.items()
        for modality in (Modality.MULTIMODAL, Modality.TEXT)
        for k in range(3)
    ]
    return Measurement(records, None, {r.item_id: 0.25 for r in records})


SPLITS = {"forget": ["f1", "f2", "f3"], "retain": ["r1", "r2", "r3"]}
KNOWING = {"f1": -0.5, "f2": -0.7, "f3": -0.6, "r1": -0.4, "r2": -0.8, "r3": -0.5}
NEVER_LEARNED = {"f1": -3.5, "f2": -2.9, "f3": -3.8, "r1": -0.4, "r2": -0.8, "r3": -0.5}


def _by_key(rows):
    return {(r.split, r.modality, r.metric): r for r in rows}


def test_an_oracle_against_itself_has_forget_quality_one_and_distance_zero():
    oracle = _measurement(NEVER_LEARNED)
    rows = _by_key(metric_rows(CellId.oracle("finetuned"), [oracle], SPLITS, None, oracle))
    for modality in ("multimodal", "text", "all"):
        assert rows[("forget", modality, "forget_quality")].value == 1.0
        for split in ("forget", "retain"):
            distance = rows[(split, modality, "oracle_distance")]
            assert distance.value == 0.0 and (distance.low, distance.high) == (0.0, 0.0)
    # Forget quality is measured on the forget split only.
    assert ("retain", "all", "forget_quality") not in rows


def test_a_state_that_still_knows_the_forget_set_is_told_apart_from_the_oracle():
    state, oracle = _measurement(KNOWING), _measurement(NEVER_LEARNED)
    rows = _by_key(metric_rows(CellId("finetuned", "ga"), [state], SPLITS, state, oracle))
    quality = rows[("forget", "all", "forget_quality")]
    assert quality.value < 0.05 and quality.n == 18 and quality.low is None
    distance = rows[("forget", "all", "oracle_distance")]
    assert distance.value == pytest.approx(1.0) and distance.low > 0
    assert rows[("retain", "all", "oracle_distance")].value == 0.0
    # The truth ratio is low where the model knows, about 1 or more where it never learned.
    assert rows[("forget", "all", "truth_ratio")].value < 0.3
    # Rows versus the oracle carry no change against before.
    assert distance.change_low is None


def test_without_an_oracle_the_other_rows_are_unchanged():
    state, oracle = _measurement(KNOWING), _measurement(NEVER_LEARNED)
    cell = CellId("finetuned", "ga")
    without = metric_rows(cell, [state], SPLITS, state)
    with_oracle = metric_rows(cell, [state], SPLITS, state, oracle)
    assert not {r.metric for r in without} & {"forget_quality", "oracle_distance"}
    versus_oracle = ("forget_quality", "oracle_distance")
    assert without == [r for r in with_oracle if r.metric not in versus_oracle]


def test_other_scorers_keep_no_option_logprobs_and_get_no_truth_ratio_rows():
    state = _measurement(KNOWING)
    for record in state.mcq:
        record.extras.pop("mean_logprobs")
    rows = metric_rows(CellId("finetuned", "ga"), [state], SPLITS, None, state)
    assert not {r.metric for r in rows} & {"truth_ratio", "forget_quality"}
    assert "oracle_distance" in {r.metric for r in rows}


def test_a_truth_ratio_beyond_a_float_is_infinite_and_forget_quality_reads_its_log():
    far = {"A": -900.0, "B": -2.0, "C": -2.5}  # log R = 897.75: R overflows a float
    assert truth_ratio(far, "A") == math.inf
    assert log_truth_ratio(far, "A") == pytest.approx(897.75)
    oracle = _measurement(NEVER_LEARNED)
    # Forget quality depends only on the order of the ratios: a state far past the oracle has
    # the same p-value whether its forget answers sit at -900 nats (R overflows) or at -90.
    rows = {}
    for gold in (-900.0, -90.0):
        state = _measurement({p: (gold if p.startswith("f") else v) for p, v in KNOWING.items()})
        rows[gold] = _by_key(metric_rows(CellId("finetuned", "ga"), [state], SPLITS, None, oracle))
    quality = rows[-900.0][("forget", "all", "forget_quality")].value
    assert (
        math.isfinite(quality) and quality == rows[-90.0][("forget", "all", "forget_quality")].value
    )
    assert rows[-900.0][("forget", "all", "truth_ratio")].value == math.inf
    assert math.isfinite(rows[-90.0][("forget", "all", "truth_ratio")].value)
