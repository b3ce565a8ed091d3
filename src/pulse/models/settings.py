"""How an unlearning request trains, declared once: the run config's ``train`` section (and a
scenario's or method's keys over it), ``pulse unlearn``'s options, the ``train`` argument of
:func:`pulse.methods.request.run_request`, and through
:meth:`pulse.methods.trainer.LoopConfig.from_settings` the training loop.

The defaults are the embedded default's (the synthetic world's tiny model on a CPU), as
``configs/demo.yaml`` spells them out. :data:`UNLEARN_DEFAULTS` are ``pulse unlearn``'s: the
public LoRA unlearning baselines' learning rate and batch for a real checkpoint.

A request's cache key in a run directory is this model's JSON dump: a new field changes every
key (older run directories would recompute), so add one only with that in mind.

Light on purpose (no torch): the command line reads it to declare its options.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from pulse.models.scope import ScopeConfig


def _steps(value: int) -> int:
    # 0 would "finish" without a step and save the untrained adapter as a result.
    if value != -1 and value < 1:
        raise ValueError("expected -1 (train by epochs) or at least 1")
    return value


_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(steps?|min|mins|minutes?)\s*$")


def checkpoint_schedule(text: str | None) -> tuple[int, float]:
    """``checkpoint_every`` as (every N optimizer steps, every S seconds); 0 where not asked.
    ``"50 steps"``, ``"10 min"``, ``"50 steps or 10 min"`` (whichever comes first); ``off``
    or null: never."""
    if text is None or text.strip().lower() in ("off", "never", "no"):
        return 0, 0.0
    steps, seconds = 0, 0.0
    for part in re.split(r"\s+or\s+|,", text.strip()):
        match = _EVERY.match(part)
        if match is None:
            raise ValueError("expected 'N steps', 'M min', both ('50 steps or 10 min') or off")
        number, unit = match.groups()
        if unit.startswith("step"):
            if not number.isdigit() or int(number) < 1 or steps:
                raise ValueError("expected a whole number of steps, at least 1, given once")
            steps = int(number)
        else:
            if float(number) <= 0 or seconds:
                raise ValueError("expected a positive number of minutes, given once")
            seconds = float(number) * 60
    return steps, seconds


def _schedule(text: str | None) -> str | None:
    checkpoint_schedule(text)  # refused here, with the rest of the settings
    return text


_POINTS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(steps?|epochs?)\s*$")


def eval_schedule(text: str | None) -> tuple[int, float]:
    """``eval_every`` as (every N optimizer steps, every F epochs); (0, 0) when off.
    ``"10 steps"`` or ``"0.25 epoch"`` (a fraction of an epoch, rounded to whole steps)."""
    if text is None or text.strip().lower() in ("off", "never", "no"):
        return 0, 0.0
    match = _POINTS.match(text)
    if match is None:
        raise ValueError("expected 'N steps', 'F epoch' (e.g. '0.25 epoch') or off")
    number, unit = match.groups()
    if unit.startswith("step"):
        if not number.isdigit() or int(number) < 1:
            raise ValueError("expected a whole number of steps, at least 1")
        return int(number), 0.0
    if float(number) <= 0:
        raise ValueError("expected a positive fraction of an epoch")
    return 0, float(number)


def eval_steps(text: str | None, steps_per_epoch: int, last: int) -> list[int]:
    """The optimizer steps at which ``eval_every`` evaluates a request of ``last`` steps
    (``steps_per_epoch`` of them per epoch): every N steps, before the last (the last step's
    state is the request's own)."""
    steps, epochs = eval_schedule(text)
    every = steps or max(1, round(epochs * max(steps_per_epoch, 1)))
    if not (steps or epochs):
        return []
    return list(range(every, last, every))


def _points(text: str | None) -> str | None:
    eval_schedule(text)
    return text


def _stop(value: float | str | None) -> float | str | None:
    if isinstance(value, str) and value != "target":
        raise ValueError("expected 'target', a forget accuracy in [0, 1] or null")
    if isinstance(value, float) and not 0 <= value <= 1:
        raise ValueError("expected a forget accuracy in [0, 1]")
    return value


# The bounds of the settings a method entry may also give (one declaration: the run config's
# train section, a method entry's keys and pulse unlearn's options read the same rules).
# Infinity and NaN are refused: a run with lr .inf trained to NaN weights.
LearningRate = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Epochs = Annotated[float, Field(gt=0, allow_inf_nan=False)]
MaxSteps = Annotated[int, AfterValidator(_steps)]
LossBound = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class TrainSettings(BaseModel):
    """How one unlearning request trains (every method; a method entry may override)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lr: LearningRate = Field(1e-3, description="Learning rate.")
    # Two passes: on the default world one pass over 16 pairs per person leaves the fine-tuned
    # people's name path almost untouched; two bring forgetting to the oracle's level.
    epochs: Epochs = Field(2.0, description="Epochs over the forget set.")
    max_steps: MaxSteps = Field(
        -1, description="Stop after N optimizer steps (overrides epochs; -1: by epochs)."
    )
    batch_size: int = Field(16, ge=1, description="Forget examples per step.")
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation steps.")
    bf16: bool = Field(False, description="Train in bfloat16 autocast.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations: less memory.")
    loss_bound: LossBound | None = Field(
        1e4, description="|loss| beyond this stops the request as diverged (null: no bound)."
    )
    # Batches of similar length: less padding (see the README).
    group_by_length: bool = Field(False, description="Batches of similar length.")
    # Examples packed into rows of about this many tokens: the same losses without compute on
    # padding (0: padded rows). LLaVA-1.5-architecture models only; others train padded.
    pack_tokens: int = Field(
        128, ge=0, description="Pack examples into rows of about N tokens (0: padded rows)."
    )
    # At most this many training pairs of each person (a sample seeded by the person's ID, the
    # same in every request); null: all. The world's profiles carry 69 phrasings each: 16 of
    # them unlearn the fine-tuned people in a quarter of the steps.
    pairs_per_id: int | None = Field(
        16, ge=1, description="At most N training pairs per person (seeded sample)."
    )
    scope: ScopeConfig = Field(default_factory=ScopeConfig)
    # A request's training checkpoints (the Trainer's: adapter, optimizer, schedule, RNG and
    # data order), from which a request killed mid-training resumes with the weights an
    # uninterrupted one reaches; deleted when it finishes. Not part of a request's identity
    # (its cache key, the config's digest): changing it never invalidates results.
    checkpoint_every: Annotated[str | None, AfterValidator(_schedule)] = Field(
        "10 min",
        description="Checkpoint a request every 'N steps', 'M min' or both ('50 steps or "
        "10 min'), and resume a killed one from its last checkpoint (off: never).",
    )

    # Evaluation along a request (pulse.protocol.trajectory): the forget and retain people
    # scored every N steps or F epochs, each point a state of the request. Not part of its
    # identity: the weights it ends in are those of a request without it.
    eval_every: Annotated[str | None, AfterValidator(_points)] = Field(
        None,
        description="Evaluate forget and retain along the request every 'N steps' or 'F epoch' "
        "(a fraction of an epoch); null: only at its end.",
    )
    eval_general: bool = Field(
        False, description="With eval_every: general capability at every point too."
    )
    # Early stopping at the first evaluated point whose forget accuracy is at or below a level:
    # 'target' (the scenario's matched-forgetting target: its oracle's forget accuracy, else
    # matched.target) or a number. Part of a request's identity when set.
    stop_at: Annotated[float | Literal["target"] | None, AfterValidator(_stop)] = Field(
        None,
        description="With eval_every: stop at the first point whose forget accuracy is at or "
        "below 'target' (the matched-forgetting target) or this level; null: never.",
    )

    @model_validator(mode="after")
    def _stop_needs_points(self) -> TrainSettings:
        if self.stop_at is not None and not eval_schedule(self.eval_every) != (0, 0.0):
            raise ValueError(
                "stop_at: early stopping needs evaluation along the request (eval_every)"
            )
        return self

    def identity(self, *, without: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The settings that decide what training computes (JSON), for cache keys: all but
        ``checkpoint_every``, ``eval_general`` and ``without``; ``stop_at`` and ``eval_every``
        only when ``stop_at`` is set (where training stops depends on which points are
        evaluated; without it they leave the weights alone, and keys stay as they were)."""
        skip = {"checkpoint_every", "eval_general", *without}
        if self.stop_at is None:
            skip |= {"stop_at", "eval_every"}
        return self.model_dump(mode="json", exclude=skip)


# pulse unlearn's defaults: lr 2e-5, batch 4 (the public LoRA unlearning baselines, for a real
# checkpoint; the embedded tiny model needs the larger steps above), every pair of each person,
# padded rows. The scope is the protocol's (rank 8).
UNLEARN_DEFAULTS = TrainSettings(
    lr=2e-5, epochs=1.0, batch_size=4, pack_tokens=0, pairs_per_id=None
)
