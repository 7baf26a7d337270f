"""Running the model and recording what passes through it: residual stream capture, layer ablation.

The names below load on first use, so the light submodules (``layer_spec``, ``contexts``, ``storage``) are
importable, for a config's checks, without the engine's torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: public name -> submodule
_LAZY = {
    "capture_residuals": "engine",
    "EMBED": "layer_spec",
    "FINAL_NORM": "layer_spec",
    "check_layers_syntax": "layer_spec",
    "layer_depth": "layer_spec",
    "layer_name": "layer_spec",
    "layer_title": "layer_spec",
    "parse_layers": "layer_spec",
    "resolve_layer": "layer_spec",
    "CapturePrompt": "prompts",
    "prompts_at": "prompts",
    "DEFAULT_MEMORY_BUDGET": "storage",
    "parse_budget": "storage",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


if TYPE_CHECKING:  # pragma: no cover
    from .engine import capture_residuals
    from .layer_spec import (
        EMBED,
        FINAL_NORM,
        check_layers_syntax,
        layer_depth,
        layer_name,
        layer_title,
        parse_layers,
        resolve_layer,
    )
    from .prompts import CapturePrompt, prompts_at
    from .storage import DEFAULT_MEMORY_BUDGET, parse_budget
