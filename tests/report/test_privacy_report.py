"""The privacy table and its reading from hand-made rows: PrivLeak's verdicts, a scenario
without an oracle (AUC but no PrivLeak) and one without membership rows, each saying why."""

from __future__ import annotations

from pulse.eval.intervals import Interval
from pulse.protocol.cells import CellId
from pulse.report.privacy import missing_reason, privacy_reading, privacy_tables
from pulse.report.privacy_figure import privacy_figures
from pulse.report.tables import build_tables


def _rows(scenario, method, auc, leak=None, request=1):
    cell = (
        CellId.before(scenario)
        if method == "before"
        else CellId.oracle(scenario)
        if method == "oracle"
        else CellId(scenario, method, request=request)
    )
    rows = [
        cell.row("forget", m, "accuracy", 0.5, 10, Interval(0.4, 0.6))
        for m in ("multimodal", "text")
    ]
    for modality in ("multimodal", "text", "all"):
        rows.append(
            cell.row(
                "forget", modality, "mia_auc_min_k_pp", auc, 40, Interval(auc - 0.05, auc + 0.05)
            )
        )
        if leak is not None:
            rows.append(
                cell.row(
                    "forget",
                    modality,
                    "privleak_min_k_pp",
                    leak,
                    40,
                    Interval(leak - 0.1, leak + 0.1),
                )
            )
    return rows


def test_the_reading_names_leaking_over_unlearned_and_oracle_level_states():
    rows = (
        _rows("finetuned", "before", 0.95, 0.9)
        + _rows("finetuned", "oracle", 0.5, 0.0)
        + _rows("finetuned", "ga", 0.3, -0.4)
        + _rows("finetuned", "npo", 0.52, 0.04)
        + _rows("finetuned", "ga_kl", 0.8, 0.6)
    )
    privacy = privacy_tables(rows, ["ga", "npo", "ga_kl"])
    assert [t.scenario for t in privacy] == ["finetuned-privacy"]
    text = " ".join(privacy_reading(build_tables(rows), privacy, {"models": {"world": {}}}))
    assert "the oracle's Min-K %++ membership AUC" in text and "multimodal 50.0" in text
    assert "before (multimodal +90.0 %, text-only +90.0 %); ga_kl (multimodal +60.0 %" in text
    assert "still leak membership" in text
    assert "ga (multimodal -40.0 %, text-only -40.0 %) are over-unlearned" in text
    assert "npo (multimodal +4.0 %, text-only +4.0 %) are at the oracle's level" in text
    assert privacy_figures(privacy)[0].name == "privacy_finetuned-privacy.png"


def test_without_an_oracle_auc_rows_come_without_privleak_and_the_reading_says_why():
    rows = _rows("pretrained", "before", 0.9) + _rows("pretrained", "ga", 0.6)
    privacy = privacy_tables(rows, ["ga"])
    sentences = privacy_reading(build_tables(rows), privacy, None)
    assert any(
        s.startswith(
            "In pretrained, membership inference has AUC rows but no PrivLeak: there is no oracle"
        )
        for s in sentences
    )
    assert privacy_figures(privacy)  # the AUC per state, without an oracle's level


def test_a_scenario_without_membership_rows_says_why():
    rows = [CellId.before("finetuned").row("forget", "multimodal", "accuracy", 0.9, 10)]
    local = {"models": {"world": None, "finetuned": "ckpt"}, "privacy": {"enabled": True}}
    sentences = privacy_reading(build_tables(rows), [], local)
    assert sentences == [
        "In finetuned there are no membership-inference rows: the run names no holdout people "
        "(privacy.holdout: people the model never trained on, e.g. those left out with pulse "
        "finetune --exclude)."
    ]
    assert missing_reason("pretrained", {"privacy": {"enabled": False}}).startswith(
        "privacy is off"
    )
    assert "privacy.holdout_celebrities" in missing_reason("pretrained", local)
