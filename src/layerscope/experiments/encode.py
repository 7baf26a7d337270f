"""Sentence embeddings (seed 003): ``encode`` texts to vectors, ``similar`` ranks texts by cosine to a query."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import LayerscopeError
from ..models.embedding import Embedder, load_embedder


def _embedder(model: Embedder | str | os.PathLike | None) -> Embedder:
    return model if isinstance(model, Embedder) else load_embedder(model)


def encode(
    texts: str | Sequence[str],
    model: Embedder | str | os.PathLike | None = None,
    *,
    prompt_name: str | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Sentence embeddings of ``texts``: ``(n_texts, dim)`` float32 (one text gives ``(1, dim)``).

    Args:
        texts: a string or a list of strings.
        model: an :class:`~layerscope.models.embedding.Embedder`, or a source for ``load_embedder``
            (a sentence-transformers or MLX directory, a cached hub id; None: all-MiniLM-L6-v2).
        prompt_name: one of the model's own prompts (EmbeddingGemma: ``"query"``, ``"document"``, ...).
        batch_size: texts per forward pass.

    Example:
        >>> vectors = layerscope.encode(["The cat sat.", "A dog ran."])
        >>> vectors.shape
        (2, 384)
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise LayerscopeError("no texts to encode: give at least one")
    return _embedder(model).encode(texts, prompt_name=prompt_name, batch_size=batch_size)


def default_prompts(embedder: Embedder) -> tuple[str | None, str | None]:
    """The prompt names a retrieval model defines for queries and documents, else None."""
    prompts = embedder.prompts
    query = "query" if "query" in prompts else None
    document = next((n for n in ("document", "passage", "Retrieval-document") if n in prompts), None)
    return query, document


def similar(
    query: str,
    texts: Sequence[str],
    model: Embedder | str | os.PathLike | None = None,
    *,
    query_prompt: str | None = "auto",
    document_prompt: str | None = "auto",
    batch_size: int = 32,
) -> pd.DataFrame:
    """Rank ``texts`` by cosine similarity to ``query``.

    With ``"auto"`` prompts the model's own ``query`` / ``document`` prompts are used when it defines them.

    Returns:
        columns ``rank, cosine, text`` (best first), ``rank`` from 1.

    Example:
        >>> similar("a pet", ["a cat", "a car"]).text.tolist()
        ['a cat', 'a car']
    """
    texts = list(texts)
    if not texts:
        raise LayerscopeError("no texts to rank: give at least one text besides the query")
    embedder = _embedder(model)
    auto_query, auto_document = default_prompts(embedder)
    query_prompt = auto_query if query_prompt == "auto" else query_prompt
    document_prompt = auto_document if document_prompt == "auto" else document_prompt
    q = embedder.encode([query], prompt_name=query_prompt, batch_size=1)[0]  # (dim,)
    docs = embedder.encode(texts, prompt_name=document_prompt, batch_size=batch_size)  # (n, dim)
    cosine = docs @ q / (np.linalg.norm(docs, axis=1) * np.linalg.norm(q) + 1e-12)
    order = np.argsort(-cosine, kind="stable")
    return pd.DataFrame({"rank": np.arange(1, len(texts) + 1), "cosine": cosine[order], "text": [texts[i] for i in order]})
