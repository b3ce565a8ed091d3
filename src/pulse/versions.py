"""The installed versions of pulse and the libraries its results depend on, recorded beside
results and exports so a number can be traced to the code that produced it."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence

PACKAGES = ("pulse-unlearn", "torch", "transformers", "peft", "accelerate", "datasets")


def installed(packages: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Each package's installed version ("not installed" where it is absent)."""
    found = {}
    for package in packages:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found
