"""Running the model and recording what passes through it: residual stream capture, layer ablation.

The names below load on first use, so the light submodules (``layer_spec``, ``contexts``, ``storage``) are
importable, for a config's checks, without the engine's torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_names

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


__getattr__, __dir__ = lazy_names(__name__, _LAZY)


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
