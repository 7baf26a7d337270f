"""Packages whose public names load on first use (PEP 562), so their light submodules import without the heavy ones.

Example (a package's ``__init__.py``):
    >>> _LAZY = {"capture_residuals": "engine", "parse_layers": "layer_spec"}   # public name -> submodule
    >>> __getattr__, __dir__ = lazy_names(__name__, _LAZY)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_names(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each of ``names`` (public name -> submodule of ``package``) is
    imported from its submodule when first read, then kept in the package's namespace."""

    def __getattr__(name: str):
        if name in names:
            value = getattr(importlib.import_module(f"{package}.{names[name]}"), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted([*vars(sys.modules[package]), *names])

    return __getattr__, __dir__
