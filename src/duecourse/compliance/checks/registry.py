"""Finds every check: each module in this package defines `Check` subclasses, one per obligation kind."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import cache

from duecourse.compliance import checks as package
from duecourse.compliance.checks.base import Check


@cache
def checks() -> dict[str, Check]:
    """One instance of every concrete check, by the `kind` rules refer to."""
    found: dict[str, Check] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in ("base", "registry"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            # A check is a concrete class that names its kind; shared helper bases do not.
            concrete = not inspect.isabstract(cls) and "kind" in vars(cls)
            if issubclass(cls, Check) and cls.__module__ == module.__name__ and concrete:
                if cls.kind in found:
                    raise RuntimeError(f"two checks claim kind {cls.kind!r}")
                found[cls.kind] = cls()
    return found
