"""Errors meant for people: one line that names the file, row and field and what was expected.

The CLI catches :class:`PulseError` and prints ``str(error)`` alone (no traceback unless
``--debug``), then exits non-zero.
"""

from __future__ import annotations

from pathlib import Path


class PulseError(Exception):
    """Base class of every error the toolkit raises on bad input or bad configuration."""


class DataError(PulseError):
    """Bad input data. The message reads ``FILE, row R, field F: what was expected``."""

    def __init__(
        self,
        file: str | Path,
        message: str,
        *,
        row: int | str | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file)
        self.row = row
        self.field = field
        self.detail = message
        where = [self.file]
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {message}")


class ConfigError(PulseError):
    """A bad configuration value or command-line option."""


class SettingError(ConfigError):
    """A bad value of one named setting: ``OWNER 'FIELD': PROBLEM``. The command line reads
    ``field`` and ``problem`` to name the option the value came from (``--lr: ...``)."""

    def __init__(self, owner: str, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{owner} '{field}': {problem}")


class ModelError(PulseError):
    """A model directory that cannot be loaded or driven."""
