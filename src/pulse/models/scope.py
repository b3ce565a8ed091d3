"""The update scope: which parameters a request trains, declared once.

:class:`ScopeConfig` is the scope as a user writes it (the run config's ``train.scope``,
``pulse unlearn --scope`` and ``--rank``, a scope scenario's labels such as
``projector+llm``); :class:`UpdateScope` is what :func:`pulse.models.adapters.apply_scope`
applies, with the settings a user does not write (dropout, target names, token rows).

Light on purpose (no torch): the command line reads it to declare its options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pulse.errors import ConfigError

COMPONENTS = ("llm", "projector", "vision")
# LoRA rank and alpha of a new adapter unless a scope says otherwise: the protocol's, now also
# pulse unlearn's (it trained rank 16 before).
RANK = 8
ALPHA = 16
# Label shorthands (pulse unlearn --scope all).
SCOPE_ALIASES = {"all": "vision+projector+llm"}


@dataclass(frozen=True)
class UpdateScope:
    """Which parameters move. ``target_names`` restricts LoRA to linear layers with these leaf
    names (e.g. ``("q_proj", "v_proj")``); by default every linear layer of a LoRA component."""

    llm: Literal["lora", "frozen"] = "lora"
    projector: Literal["lora", "full", "frozen"] = "frozen"
    vision: Literal["lora", "frozen"] = "frozen"
    rank: int = RANK
    alpha: int = ALPHA
    dropout: float = 0.0
    target_names: tuple[str, ...] | None = None
    # Rows of the input embedding trained beside LoRA (PEFT's trainable tokens: a delta on those
    # rows only, saved with the adapter, dropped when it is disabled). For tokens the model
    # never saw, whose embeddings LoRA on the linear layers cannot move.
    token_indices: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        allowed = {"llm": ("lora", "frozen"), "projector": ("lora", "full", "frozen")}
        allowed["vision"] = ("lora", "frozen")
        for name, values in allowed.items():
            if getattr(self, name) not in values:
                raise ConfigError(
                    f"update scope '{name}': expected one of {', '.join(values)}, "
                    f"got {getattr(self, name)!r}"
                )
        if any(not isinstance(i, int) or i < 0 for i in self.token_indices):
            raise ConfigError("update scope 'token_indices': expected token ids (integers >= 0)")
        if self.rank < 1:
            raise ConfigError(f"update scope 'rank': expected a positive integer, got {self.rank}")
        if not self.lora_components:
            # PEFT needs at least one LoRA target; a full projector rides along as modules_to_save.
            raise ConfigError(
                "update scope: at least one of llm, projector, vision must be 'lora' "
                f"(got llm={self.llm}, projector={self.projector}, vision={self.vision})"
            )

    @property
    def lora_components(self) -> tuple[str, ...]:
        return tuple(c for c in COMPONENTS if getattr(self, c) == "lora")


class ScopeConfig(BaseModel):
    """The update scope as written in a config or on the command line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    llm: Literal["lora", "frozen"] = "lora"
    projector: Literal["lora", "full", "frozen"] = "frozen"
    vision: Literal["lora", "frozen"] = "frozen"
    rank: int = Field(RANK, ge=1)
    alpha: int = Field(ALPHA, ge=1)

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
        try:
            self.update_scope()
        except ConfigError as exc:  # pydantic reports a ValueError with its location
            raise ValueError(str(exc)) from None
        return self


def parse_scope_label(label: str, base: ScopeConfig | None = None) -> ScopeConfig:
    """``"projector+llm"`` -> LoRA on those components, the others frozen;
    ``projector:full`` trains the projector fully; ``all`` is every component. Rank and alpha
    come from ``base``. A bad label is a ValueError naming it."""
    base = base or ScopeConfig()
    settings: dict[str, str] = dict.fromkeys(COMPONENTS, "frozen")
    for part in SCOPE_ALIASES.get(label.strip(), label).split("+"):
        name, _, mode = part.strip().partition(":")
        if name not in COMPONENTS:
            raise ValueError(
                f"scope {label!r}: unknown component {name!r}, expected "
                f"{', '.join(COMPONENTS)} joined by '+' (or {', '.join(SCOPE_ALIASES)})"
            )
        settings[name] = mode or "lora"
    try:
        return ScopeConfig(**settings, rank=base.rank, alpha=base.alpha)
    except ValidationError as exc:  # e.g. projector:half; one line, not pydantic's report
        error = exc.errors()[0]
        where = "".join(f"{part}: " for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        raise ValueError(f"scope {label!r}: {where}{message}") from None
