"""Fine-tuned knowledge: unlearn part of the fictitious people the fine-tuned model learned,
in one request per method, and keep the rest.

The split is shared: the sequential and scope scenarios unlearn the same forget set, so their
before rows read the same evaluation and their requests can reuse this scenario's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, model_validator

from pulse.data.mllmu import count_profiles, is_config_name
from pulse.errors import ConfigError, DataError
from pulse.protocol.cells import Population
from pulse.protocol.config import RunConfig, Scenario, TrainSettings
from pulse.protocol.engine import Engine
from pulse.protocol.oracles import finetuned_oracle
from pulse.protocol.registry import ScenarioType, register_scenario
from pulse.protocol.sources import mllmu_needs
from pulse.protocol.splits import forget_retain, forget_size
from pulse.report.tables import GENERAL, MCQ_COLUMNS, Layout, mcq_columns

NAME = "finetuned"
# Where the finetuned scenario evaluates its requests along the way by default: one point, half
# way through the default's two epochs (each point costs about one evaluation of the people).
POINTS = "1 epoch"

# The generalisation splits (pulse.protocol.generalisation) beside the Full_Set ones: the same
# people asked in the Test_Set's other wordings and pictures.
COLUMNS = (
    *MCQ_COLUMNS[:4],
    *mcq_columns("forget_test", "Forget accuracy, Test_Set"),
    *mcq_columns("retain_test", "Retain accuracy, Test_Set"),
    GENERAL,
)


class FinetunedScenario(Scenario):
    """Unlearn ``forget_fraction`` of the fine-tuned people in one request, retain the rest.
    ``forget`` / ``retain`` (split files or MLLMU-Bench config names) fix the split instead."""

    people: int | None = Field(None, ge=2)  # the first N of a seeded shuffle (default: all)
    # Each request evaluated along the way (its trajectory and the comparison at matched
    # forgetting, pulse.protocol.trajectory): one point, at step 15 of the demo's 25.
    train: TrainSettings | None = Field(default_factory=lambda: TrainSettings(eval_every=POINTS))
    forget_fraction: float = Field(0.5, gt=0, lt=1)
    forget: str | None = None
    retain: str | None = None
    # The oracle, a local checkpoint fine-tuned like models.finetuned without the forget set
    # (pulse finetune --exclude); default models.oracle. The sequential and scope scenarios
    # reuse it unless given their own.
    oracle: Path | None = None
    added_later: ClassVar[tuple[str, ...]] = ("oracle",)
    oracle_of: ClassVar[str | None] = "finetuned"

    @model_validator(mode="after")
    def _both_or_neither(self) -> FinetunedScenario:
        if (self.forget is None) != (self.retain is None):
            raise ValueError("give both forget and retain, or neither")
        return self

    def check_data(self, config: RunConfig, sources: Any) -> None:
        if self.forget is not None and sources.mllmu is not None:
            from pulse.methods.request import check_disjoint

            forget = split_ids("forget", self.forget, sources.mllmu)
            retain = split_ids("retain", self.retain, sources.mllmu)
            check_disjoint(forget, retain, (f"scenarios.{NAME}.forget", f"scenarios.{NAME}.retain"))
        if self.people is not None and self.forget is None:
            enough_profiles(
                f"scenarios.{NAME}.people", self.people, sources.mllmu, config.data.fictitious
            )


def split_ids(key: str, spec: str | None, mllmu: Path) -> list[str]:
    """The IDs ``scenarios.finetuned.<key>`` names; a bad one is one line under that key."""
    from pulse.methods.request import resolve_ids

    try:
        return resolve_ids(spec, mllmu)[0]
    except DataError as exc:
        raise ConfigError(f"scenarios.{NAME}.{key}: {exc}") from None


def enough_profiles(key: str, wanted: int, mllmu: Path, config: str) -> None:
    """``wanted`` people of the MLLMU-Bench ``config``, or one line naming ``key``."""
    if wanted > (found := count_profiles(mllmu, config)):
        raise ConfigError(f"{key}: {wanted} asked for, {config} has {found} people")


def finetuned_split(engine: Engine) -> tuple[list[str], list[str]]:
    """The forget and retain people of the fine-tuned model (saved in the run directory the
    first time, read back after)."""
    saved = engine.saved_split(NAME)
    if saved is not None:
        return saved
    config = engine.config
    spec = config.scenarios[NAME]
    fictitious = config.data.fictitious
    if spec.forget is not None:  # checked as disjoint with the data (FinetunedScenario.check_data)
        people = set(engine.measurer.people(fictitious))
        forget = split_ids("forget", spec.forget, engine.sources.mllmu)
        retain = split_ids("retain", spec.retain, engine.sources.mllmu)
        for key, ids in (("forget", forget), ("retain", retain)):
            unknown = [i for i in ids if i not in people]
            if unknown:  # checked before the split is saved as this run's
                raise ConfigError(
                    f"scenarios.{NAME}.{key}: {unknown[0]!r} is not a split file, an "
                    f"MLLMU-Bench config or a person of {fictitious}"
                )
    else:
        people = list(engine.measurer.people(fictitious))
        forget, retain = forget_retain(people, spec.forget_fraction, config.seed, spec.people)
    return engine.save_split(NAME, forget, retain)


def forget_count(config: RunConfig, mllmu: Path | None = None) -> tuple[int, str] | None:
    """How many people the split of :func:`finetuned_split` will forget, and why, as far as
    the config tells (``mllmu`` ``None``: the world's size when the world supplies the data)
    or the MLLMU-Bench root ``mllmu`` does; ``None`` when neither does."""
    spec = config.scenarios[NAME]
    if spec.forget is not None:
        if mllmu is None:
            return None
        from pulse.methods.request import resolve_ids

        named = str(spec.forget).strip() if isinstance(spec.forget, str | Path) else ""
        if is_config_name(named) and not (mllmu / named).is_dir() and not Path(named).is_file():
            return None  # a split that does not exist: finetuned_split refuses it in its words
        ids, _ = resolve_ids(spec.forget, mllmu)
        return len(ids), f"scenarios.{NAME}.forget lists {len(ids)}"
    people, where = spec.people, f"{spec.people} people"
    if people is None:
        fictitious = config.data.fictitious
        world = config.models.world
        if mllmu is not None:
            people = count_profiles(mllmu, fictitious)
            where = f"{people} people in {fictitious}"
        elif world is not None and config.data.mllmu is None and fictitious == "Full_Set":
            from pulse.world.build import SIZES

            people = SIZES[world.size].fictitious
            where = f"{people} people in the {world.size} world"
        else:
            return None
    if people < 2:
        return None  # forget_retain refuses it in its own words
    forget = forget_size(people, spec.forget_fraction)
    return forget, f"{where} x forget_fraction {spec.forget_fraction}"


def fictitious(engine: Engine, name: str = NAME) -> tuple[Population, list[str], list[str]]:
    """The fine-tuned model, its people, the finetuned split and the oracle of its forget set
    that scenario ``name`` compares with, when the run has one (shared by three scenarios)."""
    assert engine.sources.finetuned is not None
    forget, retain = finetuned_split(engine)
    group = Population(
        engine.sources.finetuned,
        engine.config.data.fictitious,
        forget + retain,
        finetuned_oracle(engine, name, forget),
    )
    return group, forget, retain


def run(engine: Engine, name: str) -> None:
    group, forget, retain = fictitious(engine, name)
    splits = {"forget": forget, "retain": retain}
    engine.before(name, group, splits)
    engine.oracle(name, group, splits)
    engine.methods(name, group, splits, forget, retain)


NO_ORACLE = (
    "the run's models are local checkpoints and neither scenarios.finetuned.oracle nor "
    "models.oracle names one (the fine-tuned model's recipe without the forget set: pulse "
    "finetune --exclude), or its rows were written before oracles existed"
)


register_scenario(
    ScenarioType(
        name=NAME,
        config=FinetunedScenario,
        run=run,
        layout=Layout("Fine-tuned knowledge", COLUMNS, "setting"),
        needs=lambda config, sources: mllmu_needs(config, sources, "models.finetuned", NAME),
        no_oracle=NO_ORACLE,
    )
)
