"""One module per experiment: its config, its run and its result (see :mod:`layerscope.experiment`).

Each experiment of :data:`layerscope.registry.ENTRIES` loads on first use under its name, so
``layerscope.experiments.layout.layout(...)`` works after ``import layerscope`` (``similar`` is the module that
holds it, ``encode``).
"""

from __future__ import annotations

import importlib

from ..registry import ENTRIES


def __getattr__(name: str):

    if name in ENTRIES:
        return importlib.import_module(ENTRIES[name].module)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
