"""Where layerscope keeps what it computes once (dequantized GGUF weights, tokenizers)."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir


def cache_root() -> Path:
    """``$LAYERSCOPE_CACHE`` or the user cache directory (``~/.cache/layerscope`` on Linux)."""
    return Path(os.environ.get("LAYERSCOPE_CACHE") or user_cache_dir("layerscope"))
