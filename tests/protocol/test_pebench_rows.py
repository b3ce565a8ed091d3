"""PEBench scores with their intervals, from per-item records (no model needed)."""

from __future__ import annotations

import pytest

from pulse.data.schema import ItemKind, Modality
from pulse.eval.intervals import person_bootstrap
from pulse.eval.records import ItemRecord, records_to_dicts
from pulse.protocol.cells import CellId
from pulse.protocol.measure import Measurement, metric_rows

CELL = CellId("pebench", "ga", "person")


def pebench_rows(cell, runs, before=None):
    """The PEBench score rows of evaluations as the scenario stores them."""
    measured = [Measurement.from_dict(run) for run in runs]
    earlier = Measurement.from_dict(before) if before is not None else None
    return metric_rows(cell, measured, {}, earlier)


def evaluation(efficacy: list[float], retain: dict[str, list[float]]) -> dict:
    """One forgotten person's seen images (efficacy) and other people's images (retain)."""
    records = [
        ItemRecord(f"img{i}#person", "Ann", ItemKind.GENERATION, Modality.MULTIMODAL, "x", "Ann",
                   score=s, extras={"group": "efficacy"})
        for i, s in enumerate(efficacy)
    ]  # fmt: skip
    records += [
        ItemRecord(f"{who}{i}#person", who, ItemKind.GENERATION, Modality.MULTIMODAL, "x", who,
                   score=s, extras={"group": "retain"})
        for who, scores in retain.items()
        for i, s in enumerate(scores)
    ]  # fmt: skip
    return {"records": records_to_dicts(records)}


def test_scores_carry_intervals_drawn_over_images_or_people():
    before = evaluation([1, 1, 1, 1], {"Bo": [1, 1], "Cy": [1, 0], "Di": [1, 1]})
    after = evaluation([0, 1, 0, 0], {"Bo": [1, 0], "Cy": [0, 0], "Di": [1, 1]})
    rows = {r.split: r for r in pebench_rows(CELL, [after], before)}
    efficacy, retain = rows["efficacy"], rows["retain"]
    # Efficacy is 1 - the mean score; one forgotten person, so its images are the units.
    assert efficacy.value == 0.75 and efficacy.n == 4
    assert efficacy.low <= 0.75 <= efficacy.high and efficacy.high == 1.0
    # Retain draws the three other people, each with their images.
    assert retain.value == pytest.approx(0.5)
    records = [r for r in after_records(after) if r.extras["group"] == "retain"]
    expected = person_bootstrap(records)
    assert (retain.low, retain.high) == (expected.low, expected.high)
    # Changes against before: efficacy rose by 0.75, retain fell by 1/3; paired intervals.
    assert efficacy.change_low <= 0.75 <= efficacy.change_high
    assert retain.change_low <= -1 / 3 <= retain.change_high <= 0
    # Several seeds pool: the mean of their scores.
    other = evaluation([0, 0, 0, 0], {"Bo": [1, 1], "Cy": [1, 1], "Di": [1, 1]})
    pooled = {r.split: r for r in pebench_rows(CELL, [after, other], before)}
    assert pooled["efficacy"].value == pytest.approx((0.75 + 1.0) / 2)
    assert pooled["efficacy"].seeds == 2


def after_records(evaluation_data: dict) -> list[ItemRecord]:
    from pulse.eval.records import records_from_dicts

    return records_from_dicts(evaluation_data["records"])
