"""Method registry: short names -> pure losses with typed, documented hyper-parameters.

Each method module declares a frozen dataclass of hyper-parameters (fields with
``metadata=doc(...)``, a one-line description; bounds in the type, e.g. :data:`Positive`) and
registers its loss::

    @register("npo", NPOParams, uses=..., cached=...)
    def npo(model, batch, ctx, p): ...

``uses`` names the sub-batches the loss reads (``forget``, ``retain``, ``idk``); the loop collates
only those. ``cached`` names those whose reference log-probs may be computed once per request.
Both may depend on the parameters (e.g. NPO needs retain data only with a retain term).
``prepare`` runs once per request before training (MMUnlearner's saliency mask) and returns a
cleanup callable; ``requires`` names the example sets it needs when that is more than ``uses``.
``construct`` builds sources of the method's own from the request's data, row for row with the
forget rows (SIU's constructed targets, ViKeR's irrelevant-image rows); ``uses`` names them like
any sub-batch. ``edit`` marks a training-free method that edits weights instead of training an
adapter (MANU): ``edit(model, ctx, params) -> WeightEdit``; its ``loss`` is never called by the
loop (see :mod:`pulse.methods.edits`).

Hyper-parameters are validated in one place, :func:`parse_params`, by pydantic against the
dataclass's field types and bounds, whether they come from a run config's ``params`` or from
``pulse unlearn --set key=value`` (:mod:`pulse.assignments`); an unknown method, an unknown key
or a bad value is one :class:`~pulse.errors.ConfigError` line naming the key and what was
expected.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError
from torch import Tensor, nn

from pulse.assignments import parse_assignments
from pulse.errors import ConfigError

LossFn = Callable[..., tuple[Tensor, dict[str, Tensor]]]
Needs = Callable[[Any], Iterable[str]]

# Bounded field types for the hyper-parameter dataclasses: the bound is checked with the type.
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]


def doc(text: str) -> dict[str, str]:
    """Field metadata with a hyper-parameter's one-line description (``pulse methods`` lists
    it): ``beta: float = field(default=0.1, metadata=doc("β, ..."))``."""
    return {"doc": text}


@dataclass(frozen=True)
class MethodSpec:
    name: str
    loss: LossFn
    params: type
    uses: Needs
    cached: Needs
    prepare: Callable[..., Callable[[], None] | None] | None = None
    requires: Needs | None = None  # data the method needs (default: what it uses per step)
    construct: Callable[..., Mapping[str, Any]] | None = None  # its own row-for-row sources
    edit: Callable[..., Any] | None = None  # a training-free weight edit (no adapter)

    @property
    def doc(self) -> str:
        return (self.loss.__doc__ or "").strip()

    @property
    def summary(self) -> str:
        return self.doc.splitlines()[0] if self.doc else self.name


@dataclass(frozen=True)
class Method:
    """A method with its hyper-parameters bound: ``method(model, batch, ctx) -> (loss, logs)``."""

    spec: MethodSpec
    params: Any

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def uses(self) -> frozenset[str]:
        return frozenset(self.spec.uses(self.params))

    @property
    def cached(self) -> frozenset[str]:
        return frozenset(self.spec.cached(self.params))

    @property
    def requires(self) -> frozenset[str]:
        """Example sets the request must provide (``forget``, ``retain``)."""
        needs = self.spec.requires or self.spec.uses
        # idk and constructed rows are made from forget rows
        return frozenset(needs(self.params)) & {"forget", "retain"}

    @property
    def edits(self) -> bool:
        """A training-free method that edits weights (no adapter, no training loop)."""
        return self.spec.edit is not None

    def construct(self, data: Any) -> Any:
        """``data`` with the method's own sources added (unchanged for most methods)."""
        if self.spec.construct is None:
            return data
        made = self.spec.construct(data, self.params)
        return dataclasses.replace(data, constructed={**data.constructed, **made})

    def edit(self, model: nn.Module, ctx: Any) -> Any:
        return self.spec.edit(model, ctx, self.params)

    def __call__(self, model: nn.Module, batch: Any, ctx: Any) -> tuple[Tensor, dict[str, Tensor]]:
        return self.spec.loss(model, batch, ctx, self.params)

    def prepare(self, model: nn.Module, ctx: Any) -> Callable[[], None] | None:
        return self.spec.prepare(model, ctx, self.params) if self.spec.prepare else None

    def params_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.params)


_REGISTRY: dict[str, MethodSpec] = {}


def _needs(value: Iterable[str] | Needs) -> Needs:
    if callable(value):
        return value
    fixed = tuple(value)
    return lambda _params: fixed


def make_spec(
    name: str,
    params: type,
    loss: LossFn,
    *,
    uses: Iterable[str] | Needs = ("forget",),
    cached: Iterable[str] | Needs = (),
    prepare: Callable[..., Callable[[], None] | None] | None = None,
    requires: Iterable[str] | Needs | None = None,
    construct: Callable[..., Mapping[str, Any]] | None = None,
    edit: Callable[..., Any] | None = None,
) -> MethodSpec:
    if not dataclasses.is_dataclass(params):
        raise TypeError(f"method {name!r}: params must be a dataclass")
    needs = None if requires is None else _needs(requires)
    return MethodSpec(
        name, loss, params, _needs(uses), _needs(cached), prepare, needs, construct, edit
    )


def register(name: str, params: type, **kwargs: Any) -> Callable[[LossFn], LossFn]:
    """Decorator: register ``loss`` under ``name`` (see :func:`make_spec` for the keywords)."""

    def wrap(loss: LossFn) -> LossFn:
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} is registered twice")
        _REGISTRY[name] = make_spec(name, params, loss, **kwargs)
        return loss

    return wrap


def method_names() -> list[str]:
    return sorted(_REGISTRY)


def get_spec(name: str) -> MethodSpec:
    if name not in _REGISTRY:
        raise ConfigError(
            f"unknown unlearning method {name!r}; expected one of {', '.join(method_names())}"
        )
    return _REGISTRY[name]


def get_method(name: str, overrides: Mapping[str, Any] | Iterable[str] | None = None) -> Method:
    """The method ``name`` with its defaults updated by ``overrides`` (a mapping, or
    ``key=value`` strings as given to ``--set``)."""
    spec = get_spec(name)
    return Method(spec, parse_params(spec, overrides or {}))


def parse_params(spec: MethodSpec, overrides: Mapping[str, Any] | Iterable[str]) -> Any:
    """``spec``'s hyper-parameters with ``overrides`` (a mapping, or ``key=value`` strings)
    in place of the defaults, validated."""
    if not isinstance(overrides, Mapping):
        overrides = parse_assignments(overrides)
    names = [f.name for f in dataclasses.fields(spec.params)]
    for key in overrides:
        if key not in names:
            raise ConfigError(
                f"method {spec.name!r}: unknown parameter {key!r} "
                f"(its parameters: {', '.join(names) or 'none'})"
            )
    try:
        return _validator(spec.params).validate_python(dict(overrides))
    except ValidationError as exc:
        raise ConfigError(_param_error(spec, exc)) from None


@functools.cache
def _validator(params: type) -> TypeAdapter:
    return TypeAdapter(params)


def _param_error(spec: MethodSpec, exc: ValidationError) -> str:
    """``method 'npo', parameter 'beta': expected a number > 0, got -1``."""
    error = exc.errors()[0]
    if not error["loc"]:
        return f"method {spec.name!r}: {error['msg'].removeprefix('Value error, ')}"
    key = str(error["loc"][0])
    hint = typing.get_type_hints(spec.params)[key]
    expected = _type_name(hint)
    if typing.get_origin(hint) is Literal:
        expected = f"one of {', '.join(map(str, typing.get_args(hint)))}"
    bounds = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    for name, value in (error.get("ctx") or {}).items():
        if name in bounds:
            expected = f"{expected} {bounds[name]} {value:g}"
    return f"method {spec.name!r}, parameter {key!r}: expected {expected}, got {error['input']!r}"


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return " | ".join(map(str, typing.get_args(hint)))
    return {int: "an integer", float: "a number", bool: "true or false", str: "text"}.get(
        hint, str(hint)
    )


@dataclass(frozen=True)
class ParamInfo:
    name: str
    type: str
    default: Any
    doc: str


@dataclass(frozen=True)
class MethodInfo:
    name: str
    summary: str
    doc: str
    params: tuple[ParamInfo, ...]


def list_methods() -> list[MethodInfo]:
    """Every registered method with its hyper-parameters, their defaults and docs."""
    out = []
    for name in method_names():
        spec = _REGISTRY[name]
        hints = typing.get_type_hints(spec.params)
        params = tuple(
            ParamInfo(f.name, _type_name(hints[f.name]), f.default, f.metadata.get("doc", ""))
            for f in dataclasses.fields(spec.params)
        )
        out.append(MethodInfo(name, spec.summary, spec.doc, params))
    return out


def format_methods() -> str:
    """Plain-text listing for ``pulse methods``."""
    lines = []
    for info in list_methods():
        lines.append(f"{info.name:<12} {info.summary}")
        for p in info.params:
            setting = f"{p.name}={p.default!r}"
            kind = p.type.removeprefix("a ").removeprefix("an ")
            lines.append(f"    {setting:<20} {kind:<16} {p.doc}")
    return "\n".join(lines)


def check(ok: bool, method: str, key: str, expected: str, value: Any) -> None:
    """For a check in the params' ``__post_init__`` that a bounded type cannot express: one
    ConfigError line when ``ok`` is false."""
    if not ok:
        raise ConfigError(
            f"method {method!r}, parameter {key!r}: expected {expected}, got {value!r}"
        )
