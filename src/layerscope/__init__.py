"""layerscope: look inside language models, how they represent tokens layer by layer.

``import layerscope`` is light: torch, transformers and plotly load when a model or a figure is
first needed.

Example:
    >>> import layerscope
    >>> model = layerscope.load_model()                 # Gemma 3 270M, offline
    >>> result = layerscope.tokens(["digits", "number-words"], model=model, dims=3)
    >>> result.figure()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import LayerscopeError
from .model_spec import ModelSpec
from .registry import functions

__version__ = "0.1.0"

# public name -> (module, attribute), imported on first use: every experiment's Python face from the registry,
# and the names that are not experiments
_LAZY = {
    "Model": ("layerscope.models.model", "Model"),
    "load_model": ("layerscope.models.loading", "load_model"),
    **functions(),
    "weight_errors": ("layerscope.convert.weight_error", "weight_errors"),
    "builtin_tasks": ("layerscope.tasks.registry", "builtin_tasks"),
    "execute": ("layerscope.runner", "execute"),
}

# Imported here, not lazily: the function shares its name with its module, and importing the module later
# (``from layerscope.load_run import ...``) would otherwise leave ``layerscope.load_run`` naming the module.
from .load_run import load_run  # noqa: E402

__all__ = ["LayerscopeError", "ModelSpec", "load_run", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'layerscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


if TYPE_CHECKING:  # pragma: no cover  (the same names as _LAZY: tests/test_registry.py checks it)
    from .convert.quantize import quantize
    from .convert.weight_error import weight_errors
    from .experiments.ablate import ablate
    from .experiments.capture import residuals
    from .experiments.compare import compare
    from .experiments.echo import echo
    from .experiments.encode import encode, similar
    from .experiments.inspect import inspect
    from .experiments.layers import layers
    from .experiments.layout import layout
    from .experiments.patch import patch
    from .experiments.report import report
    from .experiments.sensitivity import sensitivity
    from .experiments.stages import stages
    from .experiments.sweep import sweep
    from .experiments.tokens import tokens
    from .load_run import load_run
    from .models.loading import load_model
    from .models.model import Model
    from .runner import execute
    from .tasks.registry import builtin_tasks


if "ipykernel" in __import__("sys").modules:  # in Jupyter: tqdm's notebook support, without its ipywidgets warning
    from .progress import in_notebook as _in_notebook  # noqa: F401  (imports tqdm.auto quietly)
