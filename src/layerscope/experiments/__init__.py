"""One module per experiment: its config, its run and its result (see :mod:`layerscope.experiment`).

Submodules load on first use, so ``layerscope.experiments.layout.layout(...)`` works after ``import layerscope``.
"""

from __future__ import annotations

import importlib

_SUBMODULES = (
    "ablate",
    "capture",
    "echo",
    "encode",
    "inspect",
    "layers",
    "layout",
    "report",
    "stages",
    "tokens",
    "tour",
)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
