"""What one evaluation of a model state keeps: its per-item records, the data every metric
reads (:mod:`pulse.protocol.metrics`), stored as JSON in the run directory's ``evals/``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulse.eval.membership import PairScore
from pulse.eval.mmbench import GeneralResult
from pulse.eval.records import ItemRecord, records_from_dicts, records_to_dicts


@dataclass
class Measurement:
    """The per-item records of one model state; a part is ``None`` when not evaluated."""

    mcq: list[ItemRecord] | None = None
    general: GeneralResult | None = None  # circular / vanilla tallies and verdicts
    chance: dict[str, float] | None = None  # MCQ item -> 1 / number of options
    pebench: list[ItemRecord] | None = None
    # Membership-inference scores of the forget and holdout people's training pairs
    # (:mod:`pulse.protocol.privacy`), stored apart from the MCQ records of the same state.
    pairs: list[PairScore] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.mcq is not None:
            general = self.general.summary() if self.general is not None else None
            data |= {"mcq": records_to_dicts(self.mcq), "general": general}
            data["chance"] = self.chance
        if self.pebench is not None:
            data["records"] = records_to_dicts(self.pebench)
        if self.pairs is not None:
            data["pairs"] = [p.to_dict() for p in self.pairs]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measurement:
        """Also what earlier versions stored (PEBench evaluations with their summary)."""
        if "pairs" in data:
            return cls(pairs=[PairScore.from_dict(p) for p in data["pairs"]])
        if "mcq" in data:
            general = data.get("general")
            return cls(
                records_from_dicts(data["mcq"]),
                GeneralResult.from_dict(general) if general is not None else None,
                data.get("chance") or {},
            )
        return cls(pebench=records_from_dicts(data.get("records") or []))
