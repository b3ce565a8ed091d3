"""A named, ordered registry of plugins: the scenarios and the metrics each keep one.

Entries keep their registration order (the order rows are written, tables shown and scenarios
run). ``builtins``, when given, is a module imported the first time the registry is read, so
the built-in entries register themselves the way any plugin does.
"""

from __future__ import annotations

import importlib
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str, builtins: str | None = None) -> None:
        self._what = what
        self._builtins = builtins
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under a new ``name``; returns it, so a module can keep it. The
        built-ins come first, whenever a plugin registers."""
        self._load_builtins()
        if name in self._entries:
            raise ValueError(f"{self._what} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def entries(self) -> list[T]:
        """Every entry, built-ins first, in registration order."""
        self._load_builtins()
        return list(self._entries.values())

    def _load_builtins(self) -> None:
        if self._builtins is not None:
            builtins, self._builtins = self._builtins, None  # their own add() must not recurse
            importlib.import_module(builtins)

    def get(self, name: str) -> T | None:
        self._load_builtins()
        return self._entries.get(name)

    def names(self) -> list[str]:
        self._load_builtins()
        return list(self._entries)
