"""Method registry: short names -> pure losses with typed, documented hyper-parameters.

Each method module declares a frozen dataclass of hyper-parameters (fields with
``metadata=doc(...)``, a one-line description) and registers its loss::

    @register("npo", NPOParams, uses=..., cached=...)
    def npo(model, batch, ctx, p): ...

``uses`` names the sub-batches the loss reads (``forget``, ``retain``, ``idk``); the loop collates
only those. ``cached`` names those whose reference log-probs may be computed once per request.
Both may depend on the parameters (e.g. NPO needs retain data only with a retain term).
``prepare`` runs once per request before training (MMUnlearner's saliency mask) and returns a
cleanup callable; ``requires`` names the example sets it needs when that is more than ``uses``.

``--set key=value`` overrides are parsed against the dataclass's field types; an unknown method,
an unknown key or a badly typed value is one :class:`~pulse.errors.ConfigError` line.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from torch import Tensor, nn

from pulse.errors import ConfigError

LossFn = Callable[..., tuple[Tensor, dict[str, Tensor]]]
Needs = Callable[[Any], Iterable[str]]


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
        return frozenset(needs(self.params)) - {"idk"}  # idk rows are made from forget rows

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
) -> MethodSpec:
    if not dataclasses.is_dataclass(params):
        raise TypeError(f"method {name!r}: params must be a dataclass")
    needs = None if requires is None else _needs(requires)
    return MethodSpec(name, loss, params, _needs(uses), _needs(cached), prepare, needs)


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


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """``["beta=0.2", "retain=kl"]`` -> ``{"beta": "0.2", "retain": "kl"}``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out


def parse_params(spec: MethodSpec, overrides: Mapping[str, Any] | Iterable[str]) -> Any:
    if not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    fields = {f.name: f for f in dataclasses.fields(spec.params)}
    hints = typing.get_type_hints(spec.params)
    values = {}
    for key, raw in overrides.items():
        if key not in fields:
            known = ", ".join(fields) or "none"
            raise ConfigError(
                f"method {spec.name!r}: unknown parameter {key!r} (its parameters: {known})"
            )
        values[key] = _convert(spec.name, key, hints[key], raw)
    return spec.params(**values)


def _convert(method: str, key: str, hint: Any, raw: Any) -> Any:
    where = f"method {method!r}, parameter {key!r}"
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        if raw not in choices:
            raise ConfigError(
                f"{where}: expected one of {', '.join(map(str, choices))}, got {raw!r}"
            )
        return raw
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{where}: expected true or false, got {raw!r}")
    if hint in (int, float):
        if isinstance(raw, bool) or (hint is int and isinstance(raw, float)):
            raise ConfigError(f"{where}: expected {_type_name(hint)}, got {raw!r}")
        try:
            if isinstance(raw, str):
                return int(raw, 10) if hint is int else float(raw)
            return hint(raw)
        except ValueError:
            raise ConfigError(f"{where}: expected {_type_name(hint)}, got {raw!r}") from None
    if hint is str:
        return str(raw)
    raise ConfigError(f"{where}: values of type {hint} cannot be set")


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
    """For the params' ``__post_init__``: one ConfigError line when ``ok`` is false."""
    if not ok:
        raise ConfigError(
            f"method {method!r}, parameter {key!r}: expected {expected}, got {value!r}"
        )
