"""The oracle in the report: a reference row beside before, its columns, and a reading that
places every state against it (and says why a table has none)."""

from __future__ import annotations

from pulse.protocol.results import ResultRow
from pulse.report.reading import build_reading
from pulse.report.tables import build_tables

from .conftest import before, mcq

FT = "finetuned"


def versus_oracle(method: str, distance: dict[str, tuple], quality: tuple) -> list[ResultRow]:
    """Distance rows (value, low, high) per modality of the forget split, and forget quality."""
    request = 0 if method == "oracle" else 1
    rows = []
    for modality, (value, low, high) in distance.items():
        cell = (FT, FT, method, "", request, 1, "forget", modality, "oracle_distance")
        rows.append(ResultRow(*cell, value, 10, low=low, high=high))
    for modality, value in zip(("multimodal", "text"), quality, strict=True):
        cell = (FT, FT, method, "", request, 1, "forget", modality, "forget_quality")
        rows.append(ResultRow(*cell, value, 10))
    return rows


def oracle_rows() -> list[ResultRow]:
    rows = before(FT, FT, forget=(0.80, 0.78), retain=(0.79, 0.77), general=0.75)
    oracle = mcq(FT, FT, "oracle", "", 0, 1, forget=(0.30, 0.32), retain=(0.78, 0.77), general=0.74)
    rows += oracle
    rows += versus_oracle(
        "oracle", {"multimodal": (0.0, 0.0, 0.0), "text": (0.0, 0.0, 0.0)}, (1.0, 1.0)
    )
    # ga falls below the oracle (over-forgets); npo lands on it; ga_kl keeps too much.
    rows += mcq(FT, FT, "ga", forget=(0.10, 0.12), retain=(0.20, 0.25), general=0.40)
    rows += versus_oracle(
        "ga", {"multimodal": (-0.2, -0.3, -0.1), "text": (-0.2, -0.3, -0.1)}, (0.001, 0.01)
    )
    rows += mcq(FT, FT, "npo", forget=(0.29, 0.33), retain=(0.70, 0.72), general=0.70)
    rows += versus_oracle(
        "npo", {"multimodal": (-0.01, -0.1, 0.08), "text": (0.01, -0.08, 0.1)}, (0.6, 0.4)
    )
    rows += mcq(FT, FT, "ga_kl", forget=(0.60, 0.60), retain=(0.75, 0.75), general=0.72)
    rows += versus_oracle(
        "ga_kl", {"multimodal": (0.3, 0.2, 0.4), "text": (0.28, 0.2, 0.36)}, (0.02, 0.03)
    )
    return rows


def test_the_oracle_row_is_a_reference_beside_before():
    (table,) = build_tables(oracle_rows())
    assert [r.label for r in table.rows] == ["before", "oracle", "ga", "npo", "ga_kl"]
    assert [r.method for r in table.method_rows] == ["ga", "npo", "ga_kl"]
    assert table.oracle is not None and table.oracle.keys == ("oracle",)
    # Its own columns: forget quality and distance to the oracle.
    keys = [c.key for c in table.columns]
    assert "forget_quality_forget_multimodal" in keys
    assert "oracle_distance_forget_text" in keys
    # It competes for no best value, and distance (ideal: zero) marks none.
    assert not any(c.best for c in table.oracle.cells.values())
    assert not any(r.cells["oracle_distance_forget_multimodal"].best for r in table.rows)
    assert table.rows[2].cells["forget_quality_forget_multimodal"].best is False
    assert table.rows[3].cells["forget_quality_forget_multimodal"].best is True


def test_the_reading_places_every_state_against_the_oracle():
    text = "\n".join(build_reading(build_tables(oracle_rows())))
    assert "the oracle (trained without the forget set) answers the forget set at 31.0%" in text
    assert "Against the oracle, ga over-forgets" in text
    assert "Against the oracle, npo forgets to the oracle's level" in text
    assert "indistinguishable from the oracle by KS at 0.05" in text
    assert "Against the oracle, ga_kl has not yet forgotten" in text
    # ga forgets the most, and the reading says that it went below the oracle.
    (most,) = [s for s in build_reading(build_tables(oracle_rows())) if "forgets the most:" in s]
    assert most.startswith("In finetuned, ga forgets the most") and "below the oracle" in most


def test_without_an_oracle_the_report_says_why():
    rows = [r for r in oracle_rows() if r.method != "oracle"]
    rows = [r for r in rows if r.metric not in ("oracle_distance", "forget_quality")]
    (table,) = build_tables(rows)
    assert table.oracle is None
    reading = build_reading([table])
    assert any("there is no oracle row" in s and "models.oracle" in s for s in reading)
    assert not any("Against the oracle" in s for s in reading)
