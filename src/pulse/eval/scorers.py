"""The multiple-choice scorers by name, and the one default.

``option_text`` is the default everywhere (``pulse eval``, the run config, the library): it
scores each option's text as the answer, so it works for models of any size. ``letter`` is the
cheaper choice for models that bind answers to option letters (LLaVA-1.5 does; the embedded
tiny model does not). ``generate`` answers greedily and extracts the letter; ``mllmu`` is
MLLMU-Bench's few-shot profile, which needs a pool of other people's questions, so the protocol
offers the zero-shot scorers only.

Light on purpose (no torch): the command line reads it to declare its options.
"""

from __future__ import annotations

from typing import Literal, get_args

from pulse.errors import ConfigError

ZeroShotScorer = Literal["letter", "option_text", "generate"]

SCORERS: tuple[str, ...] = (*get_args(ZeroShotScorer), "mllmu")
DEFAULT_SCORER: ZeroShotScorer = "option_text"


def check_scorer(name: str) -> str:
    if name not in SCORERS:
        raise ConfigError(f"unknown MCQ scorer {name!r}: expected one of {', '.join(SCORERS)}")
    return name
