"""Option dictionaries as the benchmarks store them, cleaned once for prompts and extraction."""

from __future__ import annotations

import math
from collections.abc import Mapping


def is_blank(value: object) -> bool:
    """True for None, a float NaN, and strings that are empty or ``nan`` once stripped.

    ``"nan"`` is what ``str()`` makes of a missing pandas cell. ``"None"`` is *not* blank here: it
    can be a real option text ("None of them" is common; a bare "None" is possible).
    """
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip().lower() in ("", "nan")


def clean_options(options: Mapping[str, object]) -> dict[str, str]:
    """Drop blank options and sort by letter; the letters that remain are kept as they are.

    Letters are *not* re-assigned: the gold answer refers to the original letters. Values must
    already be text (read MMBench TSVs with ``dtype=str``: pandas would turn an option ``2`` into
    ``2.0``); a non-string value is an error rather than a silent ``str()``.
    """
    cleaned: dict[str, str] = {}
    for letter in sorted(options):
        value = options[letter]
        if is_blank(value):
            continue
        if not isinstance(value, str):
            raise TypeError(f"option {letter!r}: expected text, got {type(value).__name__}")
        if len(letter) != 1 or not letter.isupper():
            raise ValueError(f"option letter {letter!r}: expected one upper-case letter")
        cleaned[letter] = value
    return cleaned
