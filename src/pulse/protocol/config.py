"""The run configuration: one YAML file, validated before anything runs.

Every default is the embedded default (the synthetic world and its tiny models on a CPU), so
``RunConfig()`` is what ``pulse demo`` runs and ``configs/demo.yaml`` spells it out. A real setup
names local checkpoints under ``models`` and local files under ``data`` instead of ``world``.

Bad input is one line naming the file and the key: ``CONFIG: scenarios.sequential.requests: ...``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationError,
    field_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError, core_schema

from pulse.assignments import parse_assignment
from pulse.errors import ConfigError, DataError
from pulse.eval.scorers import DEFAULT_SCORER, ZeroShotScorer
from pulse.files import read_text
from pulse.methods.registry import get_method

# Declared below the protocol (pulse unlearn and the request share them); re-exported here,
# where the config's sections are.
from pulse.models.scope import ScopeConfig as ScopeConfig
from pulse.models.scope import parse_scope_label as parse_scope_label
from pulse.models.settings import Epochs, LearningRate, LossBound, MaxSteps
from pulse.models.settings import TrainSettings as TrainSettings
from pulse.protocol.privacy import PrivacyConfig
from pulse.protocol.registry import scenario_types


def _as_value_error(check: Any) -> None:
    """Run a check that raises ConfigError; pydantic reports ValueErrors with their location."""
    try:
        check()
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorldSource(Section):
    """The embedded default: build (or reuse) the synthetic world and train its tiny models."""

    size: Literal["small", "default", "medium", "large"] = "default"
    seed: int = 0
    dir: Path | None = None  # default: RUN_DIR/world and RUN_DIR/models


class ModelsConfig(Section):
    """Where the models come from: the ``world``, or local checkpoints.

    ``base``: the model that already knows the celebrities (pretrained scenario);
    ``finetuned``: the model fine-tuned on the fictitious profiles (finetuned, sequential and
    scope scenarios); ``pebench``: the model fine-tuned on the PEBench data; ``oracle``: the
    fine-tuned model's recipe without the finetuned scenario's forget set (``pulse finetune
    --exclude``), against which those three scenarios compare every state unless their own
    ``scenarios.<name>.oracle`` names another (:meth:`RunConfig.local_oracle`; the world trains
    its own).
    """

    world: WorldSource | None = Field(default_factory=WorldSource)
    base: Path | None = None
    finetuned: Path | None = None
    pebench: Path | None = None
    oracle: Path | None = None
    # Checked here, before a run directory is made (pulse.models.loading.DTYPES reads them).
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"

    @model_validator(mode="before")
    @classmethod
    def _checkpoints_replace_world(cls, data: Any) -> Any:
        named = isinstance(data, dict) and any(
            data.get(k) for k in ("base", "finetuned", "pebench")
        )
        if named and "world" not in data:
            return {**data, "world": None}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> ModelsConfig:
        if self.world is not None and (self.base or self.finetuned or self.pebench):
            raise ValueError("give either world or local checkpoints (base / finetuned), not both")
        if self.world is None and not (self.base or self.finetuned or self.pebench):
            raise ValueError("no model: give world, or base / finetuned / pebench checkpoints")
        if self.oracle is not None and self.finetuned is None:
            raise ValueError("oracle: the oracle of a local finetuned checkpoint (give finetuned)")
        return self


class DataConfig(Section):
    """Local data (defaults: the world's files). ``mllmu``: an MLLMU-Bench root (one folder
    per config); ``mmbench``: an MMBench TSV; ``pebench``: a PEBench CSV."""

    mllmu: Path | None = None
    mmbench: Path | None = None
    pebench: Path | None = None
    fictitious: str = "Full_Set"  # the config holding the fine-tuned people's questions
    celebrities: str = "Retain_Set"  # the config holding the pre-trained people's questions


class EvalConfig(Section):
    # A zero-shot scorer (the mllmu profile needs a few-shot pool per split); the default and
    # why: pulse.eval.scorers.
    scorer: ZeroShotScorer = DEFAULT_SCORER
    # Rows per forward pass (the option-text scorer: one row per option); the CPU default's
    # timings are in docs/benchmarks.md, GPU configs set what fits.
    batch_size: int = Field(128, ge=1)
    general: bool = True  # general capability (MMBench-format CircularEval)
    general_questions: int | None = Field(None, ge=1)  # first N questions (all rotations)
    max_new_tokens: int = Field(32, ge=1)


class MatchedConfig(Section):
    """Comparisons at matched forgetting (:mod:`pulse.protocol.trajectory`): ``target`` is
    the forget accuracy methods are compared at where a scenario has no oracle (with one, the
    oracle's forget accuracy); null: the forget questions' chance level."""

    target: float | None = Field(None, ge=0, le=1)


class MethodEntry(Section):
    """A method and its hyper-parameters; ``label`` names its rows (default: the method)."""

    method: str
    label: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    # The train section's keys a method may set, under the same bounds.
    lr: LearningRate | None = None
    epochs: Epochs | None = None
    max_steps: MaxSteps | None = None
    loss_bound: LossBound | None = None  # a tighter divergence bound for this method

    @model_validator(mode="after")
    def _known(self) -> MethodEntry:
        _as_value_error(lambda: get_method(self.method, self.params))
        return self

    @property
    def name(self) -> str:
        return self.label or self.method

    def train(self, base: TrainSettings) -> TrainSettings:
        changes = {k: getattr(self, k) for k in ("lr", "epochs", "max_steps", "loss_bound")}
        return base.model_copy(update={k: v for k, v in changes.items() if v is not None})


# Training keys added after run directories existed (left out of the digest at their default).
TRAIN_ADDED_LATER = ("eval_every", "eval_general", "stop_at")


# The keys a method entry may sweep besides its params (each a list of values).
SWEEPABLE = ("lr", "epochs", "max_steps", "loss_bound")


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def expand_sweeps(entries: Any) -> Any:
    """Method entries that list several values of a hyper-parameter (``lr: [1e-4, 3e-4]``,
    ``params: {beta: [0.1, 0.5]}``; several lists: every combination), one entry per value,
    labelled ``<label>[lr=0.0001]``: each is a request of its own, with its own cells and
    stages. Other entries pass as they are."""
    if not isinstance(entries, list):
        return entries
    out: list[Any] = []
    for entry in entries:
        params = entry.get("params") if isinstance(entry, dict) else None
        if not isinstance(entry, dict):
            out.append(entry)
            continue
        swept: list[tuple[str, bool, list[Any]]] = [
            (key, False, entry[key]) for key in SWEEPABLE if isinstance(entry.get(key), list)
        ]
        if isinstance(params, dict):
            swept += [(key, True, v) for key, v in params.items() if isinstance(v, list)]
        if not swept:
            out.append(entry)
            continue
        for key, in_params, values in swept:
            if not values:
                where = f"params.{key}" if in_params else key
                raise ValueError(f"{where}: a sweep needs at least one value")
        base = entry.get("label") or entry.get("method")
        for combination in itertools.product(*(values for _, _, values in swept)):
            new, new_params, names = dict(entry), dict(params or {}), []
            for (key, in_params, _), value in zip(swept, combination, strict=True):
                (new_params if in_params else new)[key] = value
                names.append(f"{key}={_shown(value)}")
            if params is not None or new_params:
                new["params"] = new_params
            new["label"] = f"{base}[{','.join(names)}]"
            out.append(new)
    return out


Methods = Annotated[list[MethodEntry], BeforeValidator(expand_sweeps)]


def _default_methods() -> list[MethodEntry]:
    return [MethodEntry(method="ga"), MethodEntry(method="ga_kl"), MethodEntry(method="npo")]


class Scenario(Section):
    # None: the scenario decides from the rest of the config (:meth:`on_by_default`).
    enabled: bool | None = True
    methods: Methods | None = None  # default: the run's methods
    # Training settings of this scenario's requests: each key given replaces the run's
    # ``train`` key (a scope as a whole); a method entry's own settings still come last.
    train: TrainSettings | None = None
    # Keys added after run directories existed: left out of the config's digest while at their
    # default, so those directories still resume.
    added_later: ClassVar[tuple[str, ...]] = ()
    # The ``models`` key of the model a local oracle of this scenario replaces ("finetuned",
    # "base"); None: the scenario takes no local oracle. Such a scenario declares
    # ``oracle: Path | None`` (the checkpoint), and ``oracle_from`` names another scenario
    # whose oracle it reuses unless given its own (same model, same forget set).
    oracle_of: ClassVar[str | None] = None
    oracle_from: ClassVar[str | None] = None

    @field_serializer("train")
    def _given_keys_only(self, train: TrainSettings | None) -> dict[str, Any] | None:
        # Only what the user wrote: a saved config read back must override the same keys.
        return None if train is None else train.model_dump(mode="json", exclude_unset=True)

    def check(self, config: RunConfig) -> None:
        """Checks against the rest of the config (raise ValueError), run when the config is
        parsed: what the scenario would otherwise refuse after the run directory exists."""

    def check_data(self, config: RunConfig, sources: Any) -> None:
        """Checks against the data (``sources``: :class:`pulse.protocol.sources.Sources`; raise
        ConfigError), run when the sources are known and before the run's first split is
        written: what :meth:`check` could not tell from the config alone."""

    def on_by_default(self, config: RunConfig) -> bool:
        """Whether the scenario runs when its config leaves ``enabled`` unset (None)."""
        return True

    def train_settings(self, run: TrainSettings) -> TrainSettings:
        """The run's settings with this scenario's keys in place. Where the scenario's section
        is its default, the evaluation along requests the run's ``train`` names explicitly
        (``eval_every``, ``eval_general``, ``stop_at``) wins over the scenario's default."""
        if self.train is None:
            return run
        given = set(self.train.model_fields_set)
        if self.train == type(self).model_fields["train"].get_default(call_default_factory=True):
            given -= set(TRAIN_ADDED_LATER) & run.model_fields_set
        return run.model_copy(update={key: getattr(self.train, key) for key in given})


class Scenarios(Mapping[str, Scenario]):
    """The ``scenarios`` section: one config per registered scenario type, by name, each
    validated by its own model (:mod:`pulse.protocol.registry`); a section not written takes
    its model's defaults. Read as ``config.scenarios.finetuned`` or ``config.scenarios[name]``."""

    def __init__(self, specs: Mapping[str, Scenario]) -> None:
        self._specs = dict(specs)

    @classmethod
    def parse(cls, data: Any) -> Scenarios:
        if isinstance(data, Scenarios):
            return data
        data = {} if data is None else data
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a mapping of scenario sections, got {type(data).__name__}")
        types = {s.name: s for s in scenario_types()}
        unknown = [name for name in data if name not in types]
        if unknown:
            raise PydanticCustomError(
                "scenario_section",
                "{where}: {message}",
                {"where": unknown[0], "message": "unknown key"},
            )
        specs = {}
        for name, kind in types.items():
            try:
                specs[name] = kind.config.model_validate(data.get(name) or {})
            except ValidationError as exc:
                where, message = _error_parts(exc)
                path = f"{name}.{where}" if where else name
                raise PydanticCustomError(
                    "scenario_section", "{where}: {message}", {"where": path, "message": message}
                ) from None
        return cls(specs)

    def to_dict(self, mode: str = "json") -> dict[str, Any]:
        return {name: spec.model_dump(mode=mode) for name, spec in self._specs.items()}

    def __getattr__(self, name: str) -> Scenario:
        try:
            return self.__dict__["_specs"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Scenario:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scenarios) and self._specs == other._specs

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.no_info_plain_validator_function(
            cls.parse,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda value, info: value.to_dict(info.mode), info_arg=True
            ),
        )


# Labels a method may not take: each names rows or a stage of its own inside a scenario (a
# method's stage is ``<scenario>/<label>``: one labelled ``contrasts`` would be sealed first and
# read back as the contrasts stage).
RESERVED_LABELS = {
    "before": "the model before any request",
    "oracle": "the model trained without the forget set",
    "contrasts": "the stage comparing a scenario's methods",
    "matched": "the matched-forgetting stage",
}


class RunConfig(Section):
    seed: int = 0
    # Each request trained under this many seeds (seed, seed + 1, ...) on the same splits and
    # questions: the results pool them, and their intervals cover the training's randomness
    # as well as the questions' (see pulse.protocol.results). The before state never repeats.
    repeats: int = Field(1, ge=1)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    train: TrainSettings = Field(default_factory=TrainSettings)
    methods: Methods = Field(default_factory=_default_methods, min_length=1)
    scenarios: Scenarios = Field(default_factory=lambda: Scenarios.parse({}))
    # Membership inference on the forget set against holdout people (pulse.protocol.privacy).
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    matched: MatchedConfig = Field(default_factory=MatchedConfig)

    @model_validator(mode="after")
    def _labels_unique(self) -> RunConfig:
        for name in self.scenarios:
            labels = [m.name for m in self.methods_of(name)]
            dupes = sorted({x for x in labels if labels.count(x) > 1})
            if dupes:
                raise ValueError(f"scenario {name}: method label {dupes[0]!r} is used twice")
            taken = next((x for x in labels if x in RESERVED_LABELS), None)
            if taken is not None:
                raise ValueError(f"{taken!r} is reserved for {RESERVED_LABELS[taken]}")
            nested = next((x for x in labels if "/" in x), None)
            if nested is not None:  # `ga/repeat-0` would be the stage of ga's first seed
                raise ValueError(f"method label {nested!r}: '/' separates a run's stage names")
        return self

    @model_validator(mode="after")
    def _oracles_have_their_model(self) -> RunConfig:
        # Every section, enabled or not: a disabled one's oracle may be reused (oracle_from).
        for name, spec in self.scenarios.items():
            own = getattr(spec, "oracle", None)
            key = spec.oracle_of
            if isinstance(own, Path) and key and getattr(self.models, key, None) is None:
                raise ValueError(
                    f"scenarios.{name}.oracle: a local oracle belongs to a local {key} "
                    f"checkpoint (give models.{key})"
                )
        return self

    @model_validator(mode="after")
    def _scenarios_agree(self) -> RunConfig:
        for name in self.enabled():
            try:
                self.scenarios[name].check(self)
            except ValueError as exc:
                raise ValueError(f"scenarios.{name}.{exc}") from None
        return self

    def train_of(self, scenario: str) -> TrainSettings:
        """The training settings of ``scenario``'s requests (before a method's own)."""
        return self.scenarios[scenario].train_settings(self.train)

    def local_oracle(self, scenario: str) -> tuple[str, Path] | None:
        """The local checkpoint ``scenario`` compares its states with, and the config key that
        names it: the scenario's own ``oracle``, else that of the scenario it reuses the
        oracle of, else (for the fine-tuned model's scenarios) ``models.oracle``; None when
        the config names none (with the world, the oracle is trained instead)."""
        spec = self.scenarios[scenario]
        own = getattr(spec, "oracle", None)
        if isinstance(own, Path):
            return f"scenarios.{scenario}.oracle", own
        shared = spec.oracle_from
        if shared is not None and shared in self.scenarios:
            found = self.local_oracle(shared)
            if found is not None:
                return found
        if spec.oracle_of == "finetuned" and self.models.oracle is not None:
            return "models.oracle", self.models.oracle
        return None

    def methods_of(self, scenario: str) -> list[MethodEntry]:
        own = self.scenarios[scenario].methods
        return list(own) if own is not None else list(self.methods)

    def training_seeds(self) -> list[int]:
        """The seeds every request is trained under, in repeat order."""
        return [self.seed + r for r in range(self.repeats)]

    def enabled(self) -> list[str]:
        return [
            name
            for name, spec in self.scenarios.items()
            if spec.enabled or (spec.enabled is None and spec.on_by_default(self))
        ]

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def digest(self) -> str:
        """A hash of the resolved config: a run directory belongs to one config."""
        data = self.to_dict()
        if data["repeats"] == 1:
            # Absent from versions before repeats existed: their run directories still resume.
            del data["repeats"]
        if data["models"]["oracle"] is None:
            del data["models"]["oracle"]  # likewise
        # How often requests checkpoint changes no result: a run resumes under another value.
        data["train"].pop("checkpoint_every", None)
        for section in data["scenarios"].values():
            if isinstance(section.get("train"), dict):
                section["train"].pop("checkpoint_every", None)
        for key in TRAIN_ADDED_LATER:  # at their defaults: earlier run directories resume
            if data["train"].get(key) == TrainSettings.model_fields[key].default:
                del data["train"][key]
        if self.matched == MatchedConfig():
            del data["matched"]
        if self.privacy == PrivacyConfig():
            del data["privacy"]  # likewise: run directories from before it still resume
        for name in list(data["scenarios"]):
            spec = self.scenarios[name]
            # A scenario added later, at its defaults: run directories from before it resume.
            if getattr(spec, "section_added_later", False) and spec == type(spec)():
                del data["scenarios"][name]
        for name, section in data["scenarios"].items():
            spec = self.scenarios[name]
            for key in spec.added_later:
                if getattr(spec, key) == type(spec).model_fields[key].default:
                    del section[key]
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- loading --------------------------------------------------------------------------------


def parse_config(data: Any, source: str = "config", overridden: Sequence[str] = ()) -> RunConfig:
    """``data`` validated; an error is one line (:func:`config_error`)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, source, overridden) from None


def config_error(exc: ValidationError, source: str, overridden: Sequence[str] = ()) -> ConfigError:
    """A validation error as one line naming ``source``, or ``--set KEY`` when it lies under a
    key of ``overridden`` (the command line's, which the file may not even hold)."""
    where, message = _error_parts(exc)
    key = next((k for k in overridden if where == k or where.startswith(f"{k}.")), None)
    if key is None:
        return ConfigError(f"{source}: {first_error(exc)}")
    return ConfigError(f"--set {key}: {message if where == key else first_error(exc)}")


def first_error(exc: ValidationError) -> str:
    where, message = _error_parts(exc)
    return f"{where}: {message}" if where else message


def _error_parts(exc: ValidationError) -> tuple[str, str]:
    """Where the first error is (dotted keys) and what it says, with the value given."""
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    if error["type"] == "scenario_section":  # a scenario's own model said it, deeper down
        context = error.get("ctx") or {}
        return ".".join(p for p in (where, context["where"]) if p), context["message"]
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    got = error.get("input")
    shown = (
        ""
        if error["type"] in ("extra_forbidden", "missing") or isinstance(got, dict)
        else (f", got {got!r}")
    )
    return where, f"{message}{shown}"


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``key.sub=value`` strings (see :mod:`pulse.assignments`) applied to a config mapping."""
    data = json.loads(json.dumps(data))  # a deep copy of plain data
    for text in overrides:
        key, value = parse_assignment(text)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return data


def read_yaml(path: Path) -> Any:
    """The YAML in ``path`` ({} when empty), or one line naming the file: missing, not UTF-8,
    not YAML (with the line of the first problem)."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        return yaml.safe_load(read_text(path)) or {}
    except DataError as exc:
        raise ConfigError(str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError(f"{path}: {line}not valid YAML") from None


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (``None``: the embedded default) and apply ``--set`` overrides."""
    data: Any = {}
    source = "config"
    if path is not None:
        path = Path(path)
        source = str(path)
        data = read_yaml(path)
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    if overrides:
        data = apply_overrides(data, overrides)
    return parse_config(data, source, [parse_assignment(text)[0] for text in overrides or ()])


def dump_config(config: RunConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
