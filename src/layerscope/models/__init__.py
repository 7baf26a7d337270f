"""Load the model's parts; see :func:`load_model`.

The names below load on first use, so the light submodules (``kinds``, ``names``) are importable, for a config's
checks, without the loader's torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_names

#: public name -> submodule
_LAZY = {
    "CAUSAL_LM": "kinds",
    "ENCODER": "kinds",
    "require_lm_head": "kinds",
    "load_model": "loading",
    "Model": "model",
}

__all__ = ["CAUSAL_LM", "ENCODER", "Model", "load_model", "require_lm_head"]


__getattr__, __dir__ = lazy_names(__name__, _LAZY)


if TYPE_CHECKING:  # pragma: no cover
    from .kinds import CAUSAL_LM, ENCODER, require_lm_head
    from .loading import load_model
    from .model import Model
