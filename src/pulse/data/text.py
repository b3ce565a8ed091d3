"""Checks on the text of a question, option or answer that every reader applies, so that
``pulse data validate`` refuses what evaluation could not score (one line: file, row, field).

- A field holds at most :data:`MAX_TEXT_CHARS` characters: what one item may cost is bounded
  (a 52,000-character question once grew an evaluation past the machine's memory).
- The image placeholder ``<image>`` is the chat template's to place: in the text it would be
  expanded into image features a second time.
- Options that are all the same text leave nothing to choose between.
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_TEXT_CHARS = 8_000
IMAGE_PLACEHOLDER = "<image>"


def text_problem(text: str) -> str | None:
    """What makes ``text`` unusable as a question / option / answer, or ``None``."""
    if len(text) > MAX_TEXT_CHARS:
        return f"{len(text)} characters, more than the {MAX_TEXT_CHARS} one field may hold"
    if IMAGE_PLACEHOLDER in text:
        return f"contains the image placeholder {IMAGE_PLACEHOLDER!r}: the prompt places the image"
    return None


def options_problem(options: Mapping[str, str]) -> str | None:
    """What makes a question's options unusable, or ``None``."""
    if len(options) > 1 and len({o.strip().casefold() for o in options.values()}) == 1:
        return "all options are the same text: no answer can be told apart"
    return None
