"""A scenario's oracle: its model's recipe without the forget set (:mod:`pulse.world.oracle`).

With the synthetic world the oracle of the forget set a scenario chose is trained on first use
(or reused from the models directory); with local checkpoints it is the scenario's own
``scenarios.<name>.oracle``, else the one it reuses (the sequential and scope scenarios: the
finetuned scenario's), else ``models.oracle`` for the fine-tuned model's scenarios, trained by
the user (``pulse finetune --exclude``; :meth:`RunConfig.local_oracle
<pulse.protocol.config.RunConfig.local_oracle>`); otherwise there is none, and the rows versus
the oracle are absent (the report's reading says why: :mod:`pulse.report.against_oracle`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pulse.errors import ConfigError
from pulse.models.collective import solo

if TYPE_CHECKING:
    from pulse.protocol.engine import Engine

# Oracles this process already trained or found, by (kind, models directory, forget set): the
# scenarios sharing a forget set print its quick check once.
_FOUND: dict[tuple[str, Path, tuple[str, ...]], Path] = {}


def finetuned_oracle(engine: Engine, scenario: str, forget: Sequence[str]) -> Path | None:
    """The fine-tuned model's oracle for ``forget`` that ``scenario`` compares with (its own
    local checkpoint, the one it reuses, ``models.oracle``, or the world's), or None."""
    local = engine.config.local_oracle(scenario)  # models.oracle included
    if local is not None:
        key, path = local
        check_excluded(path, forget, key, "scenarios.finetuned.forget / retain")
        return path
    return _world_oracle(engine, "finetuned", forget)


def pretrained_oracle(engine: Engine, forget: Sequence[str]) -> Path | None:
    """The base model's oracle for the celebrities ``forget``: ``scenarios.pretrained.oracle``
    as a local checkpoint, or with the world and ``oracle: true`` a second pre-training."""
    local = engine.config.local_oracle("pretrained")
    if local is not None:
        key, path = local
        check_excluded(path, forget, key, "the probe's split, RUN/splits/pretrained/forget.txt")
        return path
    if engine.config.scenarios["pretrained"].oracle is not True:
        return None
    return _world_oracle(engine, "pretrained", forget)


def _world_oracle(engine: Engine, kind: str, forget: Sequence[str]) -> Path | None:
    world = engine.sources.world_oracles
    if world is None:
        return None
    key = (kind, world.models.resolve(), tuple(sorted(set(forget))))
    if key not in _FOUND:
        from pulse.world.oracle import describe, train_finetuned_oracle, train_pretrained_oracle

        train = train_finetuned_oracle if kind == "finetuned" else train_pretrained_oracle
        engine.say(f"[oracle of the {'fine-tuned' if kind == 'finetuned' else 'base'} model]")
        # One process of its own (rank 0's, in a launched run): the others wait for the model.
        result = solo(
            train, world.world, world.models, forget, world.config, progress=engine.progress
        )
        engine.say(describe(result, forget))
        _FOUND[key] = result.path
    return _FOUND[key]


def check_excluded(
    oracle: Path,
    forget: Sequence[str],
    key: str = "models.oracle",
    split: str = "scenarios.finetuned.forget / retain",
) -> None:
    """A checkpoint made by ``pulse finetune`` records the people it left out: they must be the
    forget set, else it is not this forget set's oracle (one line naming the config ``key``
    and both sets' sizes; ``split`` says where the run's forget set comes from)."""
    from pulse.methods.finetune import read_excluded

    excluded = read_excluded(oracle)
    if excluded is not None and sorted(excluded) != sorted(set(forget)):
        raise ConfigError(
            f"{key}: {oracle} was trained without {len(excluded)} people, not this run's "
            f"forget set of {len(set(forget))} (match it to {split})"
        )
