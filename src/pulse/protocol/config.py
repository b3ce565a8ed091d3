"""The run configuration: one YAML file, validated before anything runs.

Every default is the embedded default (the synthetic world and its tiny models on a CPU), so
``RunConfig()`` is what ``pulse demo`` runs and ``configs/demo.yaml`` spells it out. A real setup
names local checkpoints under ``models`` and local files under ``data`` instead of ``world``.

Bad input is one line: ``CONFIG: scenarios.sequential.requests: expected an integer, got 'five'``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from pulse.errors import ConfigError
from pulse.methods.registry import get_method
from pulse.models.adapters import UpdateScope


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

    size: Literal["small", "default"] = "default"
    seed: int = 0
    dir: Path | None = None  # default: RUN_DIR/world and RUN_DIR/models


class ModelsConfig(Section):
    """Where the models come from: the ``world``, or local checkpoints.

    ``base``: the model that already knows the celebrities (pretrained scenario);
    ``finetuned``: the model fine-tuned on the fictitious profiles (finetuned, sequential and
    scope scenarios); ``pebench``: the model fine-tuned on the PEBench data.
    """

    world: WorldSource | None = Field(default_factory=WorldSource)
    base: Path | None = None
    finetuned: Path | None = None
    pebench: Path | None = None
    dtype: str = "auto"

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
    # The mllmu profile needs a few-shot pool per split; protocol runs use a zero-shot scorer.
    # option_text (the likelihood of each option's text as the answer) is the default because
    # it works for models of any size; letter is the cheaper choice for models that bind
    # answers to option letters (LLaVA-1.5 does; the embedded tiny model does not).
    scorer: Literal["letter", "option_text", "generate"] = "option_text"
    # Rows per forward pass (the option-text scorer: one row per option). 128 scored the demo's
    # states 1.45x faster than 32 with the same verdicts; GPU configs set what fits.
    batch_size: int = Field(128, ge=1)
    general: bool = True  # general capability (MMBench-format CircularEval)
    general_questions: int | None = Field(None, ge=1)  # first N questions (all rotations)
    max_new_tokens: int = Field(32, ge=1)


class ScopeConfig(Section):
    llm: Literal["lora", "frozen"] = "lora"
    projector: Literal["lora", "full", "frozen"] = "frozen"
    vision: Literal["lora", "frozen"] = "frozen"
    rank: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)

    def update_scope(self) -> UpdateScope:
        return UpdateScope(
            llm=self.llm,
            projector=self.projector,
            vision=self.vision,
            rank=self.rank,
            alpha=self.alpha,
        )

    @model_validator(mode="after")
    def _some_lora(self) -> ScopeConfig:
        _as_value_error(self.update_scope)
        return self


class TrainSettings(Section):
    """How one unlearning request trains (every method; a method entry may override)."""

    lr: float = Field(1e-3, gt=0)
    epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    batch_size: int = Field(16, ge=1)
    grad_accum: int = Field(1, ge=1)
    bf16: bool = False
    gradient_checkpointing: bool = False
    loss_bound: float | None = 1e4
    group_by_length: bool = False  # batches of similar length: less padding (see the README)
    # Examples packed into rows of about this many tokens: the same losses without compute on
    # padding (0: padded rows). LLaVA-1.5-architecture models only; others train padded.
    pack_tokens: int = Field(128, ge=0)
    # At most this many training pairs of each person (a sample seeded by the person's ID, the
    # same in every request); null: all. The world's profiles carry 69 phrasings each: 16 of
    # them unlearn the fine-tuned people in a quarter of the steps.
    pairs_per_id: int | None = Field(16, ge=1)
    scope: ScopeConfig = Field(default_factory=ScopeConfig)


class MethodEntry(Section):
    """A method and its hyper-parameters; ``label`` names its rows (default: the method)."""

    method: str
    label: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    lr: float | None = Field(None, gt=0)
    epochs: float | None = Field(None, gt=0)
    max_steps: int | None = None
    loss_bound: float | None = Field(None, gt=0)  # a tighter divergence bound for this method

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


def _default_methods() -> list[MethodEntry]:
    return [MethodEntry(method="ga"), MethodEntry(method="ga_kl"), MethodEntry(method="npo")]


class Scenario(Section):
    enabled: bool = True
    methods: list[MethodEntry] | None = None  # default: the run's methods
    # Training settings of this scenario's requests: each key given replaces the run's
    # ``train`` key (a scope as a whole); a method entry's own settings still come last.
    train: TrainSettings | None = None

    @field_serializer("train")
    def _given_keys_only(self, train: TrainSettings | None) -> dict[str, Any] | None:
        # Only what the user wrote: a saved config read back must override the same keys.
        return None if train is None else train.model_dump(mode="json", exclude_unset=True)

    def train_settings(self, run: TrainSettings) -> TrainSettings:
        """The run's settings with this scenario's keys in place."""
        if self.train is None:
            return run
        given = self.train.model_fields_set
        return run.model_copy(update={key: getattr(self.train, key) for key in given})


class FinetunedScenario(Scenario):
    """Unlearn ``forget_fraction`` of the fine-tuned people in one request, retain the rest.
    ``forget`` / ``retain`` (split files or MLLMU-Bench config names) fix the split instead."""

    people: int | None = Field(None, ge=2)  # the first N of a seeded shuffle (default: all)
    forget_fraction: float = Field(0.5, gt=0, lt=1)
    forget: str | None = None
    retain: str | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> FinetunedScenario:
        if (self.forget is None) != (self.retain is None):
            raise ValueError("give both forget and retain, or neither")
        return self


class PretrainedScenario(Scenario):
    """Probe the base model on the celebrities, keep the ``top`` best known (or those at or
    above ``threshold``), unlearn ``forget`` of them and retain the rest."""

    top: int | None = Field(24, ge=2)
    threshold: float | None = Field(None, ge=0, le=1)
    forget: int = Field(10, ge=1)
    combine: Literal["min", "mean", "pooled"] = "min"  # per-person accuracy over the two modalities
    # Pre-trained knowledge is learnt deeper than a LoRA fine-tune: every pair of a celebrity.
    train: TrainSettings | None = Field(default_factory=lambda: TrainSettings(pairs_per_id=None))

    @model_validator(mode="before")
    @classmethod
    def _threshold_replaces_top(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("threshold") is not None and "top" not in data:
            return {**data, "top": None}
        return data

    @model_validator(mode="after")
    def _selection(self) -> PretrainedScenario:
        if (self.top is None) == (self.threshold is None):
            raise ValueError("give exactly one of top and threshold")
        if self.top is not None and self.forget >= self.top:
            raise ValueError(f"forget ({self.forget}) must be below top ({self.top})")
        return self


class SequentialScenario(Scenario):
    """The finetuned scenario's forget set split into ``requests`` subsets, unlearned one
    after another. ``adapters``: ``continue`` trains one adapter throughout (the reference is
    the initial model); ``merge`` merges it after each request and starts a new one (the
    reference is the model after the previous request). ``batch`` adds the same data in one
    request as the comparison row."""

    requests: int = Field(5, ge=1)
    adapters: Literal["continue", "merge"] = "continue"
    reference: Literal["initial", "previous"] | None = None  # implied by adapters
    batch: bool = True

    @model_validator(mode="after")
    def _policy(self) -> SequentialScenario:
        implied = "initial" if self.adapters == "continue" else "previous"
        if self.reference is not None and self.reference != implied:
            raise ValueError(
                f"reference {self.reference!r} with adapters {self.adapters!r} is not supported: "
                "continue uses the initial model as reference, merge the previous request's model"
            )
        return self

    @property
    def reference_policy(self) -> Literal["initial", "previous"]:
        return "initial" if self.adapters == "continue" else "previous"


SCOPE_COMPONENTS = ("vision", "projector", "llm")


def parse_scope_label(label: str, base: ScopeConfig) -> ScopeConfig:
    """``"projector+llm"`` -> LoRA on those components, the others frozen;
    ``projector:full`` trains the projector fully."""
    settings: dict[str, str] = dict.fromkeys(SCOPE_COMPONENTS, "frozen")
    for part in label.split("+"):
        name, _, mode = part.strip().partition(":")
        if name not in SCOPE_COMPONENTS:
            raise ValueError(
                f"scope {label!r}: unknown component {name!r}, expected "
                f"{', '.join(SCOPE_COMPONENTS)} joined by '+'"
            )
        settings[name] = mode or "lora"
    return ScopeConfig(**settings, rank=base.rank, alpha=base.alpha)


class ScopeScenario(Scenario):
    """The finetuned scenario's request with different update scopes. PULSE's ablation is a GA
    row set, hence ``ga`` by default (``methods: null`` uses the run's methods)."""

    methods: list[MethodEntry] | None = Field(default_factory=lambda: [MethodEntry(method="ga")])
    scopes: list[str] = Field(
        default_factory=lambda: ["llm", "projector+llm", "vision+projector+llm"]
    )

    @field_validator("scopes")
    @classmethod
    def _labels(cls, labels: list[str]) -> list[str]:
        for label in labels:
            parse_scope_label(label, ScopeConfig())
        if len(set(labels)) != len(labels):
            raise ValueError("a scope is listed twice")
        return labels


class PEBenchScenario(Scenario):
    """Forget PEBench targets: ``persons`` / ``events`` are names, or a count drawn with the
    seed. The model is ``models.pebench``, or (``finetune_epochs`` > 0) the world's base
    model fine-tuned here on the seen images first."""

    enabled: bool = False
    persons: list[str] | int = 1
    events: list[str] | int = 1
    finetune_epochs: float = Field(0, ge=0)
    finetune_lr: float = Field(1e-3, gt=0)


class Scenarios(Section):
    finetuned: FinetunedScenario = Field(default_factory=FinetunedScenario)
    pretrained: PretrainedScenario = Field(default_factory=PretrainedScenario)
    sequential: SequentialScenario = Field(default_factory=SequentialScenario)
    scope: ScopeScenario = Field(default_factory=ScopeScenario)
    pebench: PEBenchScenario = Field(default_factory=PEBenchScenario)


SCENARIOS = tuple(Scenarios.model_fields)


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
    methods: list[MethodEntry] = Field(default_factory=_default_methods, min_length=1)
    scenarios: Scenarios = Field(default_factory=Scenarios)

    @model_validator(mode="after")
    def _labels_unique(self) -> RunConfig:
        for name in SCENARIOS:
            labels = [m.name for m in self.methods_of(name)]
            dupes = sorted({x for x in labels if labels.count(x) > 1})
            if dupes:
                raise ValueError(f"scenario {name}: method label {dupes[0]!r} is used twice")
            if "before" in labels:
                raise ValueError("'before' is reserved for the model before any request")
        return self

    def train_of(self, scenario: str) -> TrainSettings:
        """The training settings of ``scenario``'s requests (before a method's own)."""
        spec: Scenario = getattr(self.scenarios, scenario)
        return spec.train_settings(self.train)

    def methods_of(self, scenario: str) -> list[MethodEntry]:
        own = getattr(self.scenarios, scenario).methods
        return list(own) if own is not None else list(self.methods)

    def training_seeds(self) -> list[int]:
        """The seeds every request is trained under, in repeat order."""
        return [self.seed + r for r in range(self.repeats)]

    def enabled(self) -> list[str]:
        return [name for name in SCENARIOS if getattr(self.scenarios, name).enabled]

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def digest(self) -> str:
        """A hash of the resolved config: a run directory belongs to one config."""
        data = self.to_dict()
        if data["repeats"] == 1:
            # Absent from versions before repeats existed: their run directories still resume.
            del data["repeats"]
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- loading --------------------------------------------------------------------------------


def parse_config(data: Any, source: str = "config") -> RunConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    got = error.get("input")
    shown = (
        ""
        if error["type"] in ("extra_forbidden", "missing") or isinstance(got, dict)
        else (f", got {got!r}")
    )
    return f"{where}: {message}{shown}" if where else f"{message}{shown}"


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``key.sub=value`` strings (values parsed as YAML) applied to a config mapping."""
    data = json.loads(json.dumps(data))  # a deep copy of plain data
    for text in overrides:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {text!r}: expected key=value (e.g. train.lr=1e-4)")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return data


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (``None``: the embedded default) and apply ``--set`` overrides."""
    data: Any = {}
    source = "config"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f"line {mark.line + 1}: " if mark is not None else ""
            raise ConfigError(f"{path}: {line}not valid YAML") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    if overrides:
        data = apply_overrides(data, overrides)
    return parse_config(data, source)


def dump_config(config: RunConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
