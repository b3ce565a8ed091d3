"""A scenario's oracle: its model's recipe without the forget set (:mod:`pulse.world.oracle`).

With the synthetic world the oracle of the forget set a scenario chose is trained on first use
(or reused from the models directory); with local checkpoints it is ``models.oracle``, trained
by the user (``pulse finetune --exclude``); otherwise there is none, and the rows versus the
oracle are absent (:func:`no_oracle_reason` says why in the report).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pulse.protocol.engine import Engine

# Oracles this process already trained or found, by (models directory, forget set): the
# scenarios sharing a forget set print its quick check once.
_FOUND: dict[tuple[Path, tuple[str, ...]], Path] = {}


def finetuned_oracle(engine: Engine, forget: Sequence[str]) -> Path | None:
    """The fine-tuned model's oracle for ``forget``, or None when the run has none."""
    sources = engine.sources
    if sources.oracle is not None:
        return sources.oracle
    world = sources.world_oracles
    if world is None:
        return None
    key = (world.models.resolve(), tuple(sorted(set(forget))))
    if key not in _FOUND:
        from pulse.world.oracle import describe, train_finetuned_oracle

        engine.say("[oracle of the fine-tuned model]")
        result = train_finetuned_oracle(
            world.world, world.models, forget, world.config, progress=engine.progress
        )
        engine.say(describe(result, forget))
        _FOUND[key] = result.path
    return _FOUND[key]


def no_oracle_reason(local_models: bool) -> str:
    """Why a table of fine-tuned knowledge has no oracle row."""
    if local_models:
        return (
            "no oracle: the run's models are local checkpoints and models.oracle names none "
            "(a checkpoint fine-tuned without the forget set: pulse finetune --exclude)"
        )
    return "no oracle row: this run's results were written without one"
