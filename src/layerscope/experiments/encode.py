"""Sentence embeddings (seed 003): ``encode`` texts to vectors, ``similar`` ranks texts by cosine to a query.

Both run on a sentence-embedding model (:func:`~layerscope.models.embedding.load_embedder`): a
:class:`~layerscope.ModelSpec` whose source is None means all-MiniLM-L6-v2.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from ..experiment import Result
from ..model_spec import ModelSpec
from ..models.embedding import DEFAULT_EMBEDDER, Embedder
from ..rundir import RunDir
from ..runner import execute
from .encode_config import EmbeddingConfig, EncodeConfig, SimilarConfig  # noqa: F401  (declared in a light module)


def embedder_record(embedder: Embedder, **extra) -> dict:
    """What identifies a sentence-embedding model in ``run.json`` and a result's ``models``."""
    return {
        "source": embedder.source,
        "name": embedder.name,
        "display_name": embedder.name,
        "fingerprint": embedder.fingerprint,
        "class": type(embedder.module).__name__,
        "dim": embedder.dim,
        **extra,
    }


def _spec_of(model: Embedder | ModelSpec | str | os.PathLike | None) -> ModelSpec:
    if isinstance(model, Embedder):
        return ModelSpec(source=None if model.source == DEFAULT_EMBEDDER else model.source)
    return ModelSpec.of(model)


# ----- encode -----------------------------------------------------------------------------------------


@dataclass(kw_only=True, repr=False)
class EncodeResult(Result):
    """Sentence vectors.

    Attributes:
        inputs: the texts, in order (the config's texts, then the file's lines).
        vectors: ``(n_texts, dim)`` float32, row ``i`` for ``inputs[i]``.
    """

    config: EncodeConfig
    inputs: list[str]
    vectors: np.ndarray

    main_file: ClassVar[str] = "vectors.npy"

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"texts": pd.DataFrame({"index": np.arange(len(self.inputs)), "text": self.inputs})}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"vectors": self.vectors}

    @classmethod
    def from_files(cls, config, tables, arrays, record, run_dir) -> EncodeResult:
        """A saved encode run (see :func:`layerscope.load_run`): ``vectors`` memory-mapped."""
        inputs = [str(text) for text in tables["texts"]["text"]]
        return cls(config=config, inputs=inputs, vectors=arrays["vectors"], **cls.saved(record))

    def summary(self) -> list[str]:
        n, dim = self.vectors.shape
        return [f"{n} x {dim} vectors from {', '.join(self.model_names)}"]

    def lines(self) -> list[str]:
        """One line per text: its first coordinates, its norm and the text."""
        out = []
        for text, vector in zip(self.inputs, self.vectors):
            head = " ".join(f"{x:+.4f}" for x in vector[:6])
            out.append(f"[{head} ...] |v|={np.linalg.norm(vector):.4f}  {text}")
        return out

    def save_vectors(self, path: str | os.PathLike) -> Path:
        """Only the ``(n, dim)`` array, as the ``.npy`` file ``path`` (``.npy`` is added when missing)."""
        path = Path(path).expanduser()
        stem = path.name.removesuffix(".npy")
        return RunDir(path.parent).array(stem, self.vectors)


def run_encode(config: EncodeConfig, model: Embedder | None = None) -> EncodeResult:
    """Encode ``config``'s texts with ``model`` (loaded from ``config.model`` when None); no files written."""
    timings: dict[str, float] = {}
    texts = config.all_texts()
    embedder = config.load_embedder(model, timings)
    start = time.perf_counter()
    vectors = embedder.encode(texts, prompt_name=config.prompt_name, batch_size=config.batch_size)
    timings["compute"] = time.perf_counter() - start
    return EncodeResult(
        config=config, inputs=texts, vectors=vectors, models=[embedder_record(embedder)], timings=timings
    )


def encode(
    texts: str | Sequence[str],
    model: Embedder | ModelSpec | str | os.PathLike | None = None,
    *,
    prompt_name: str | None = None,
    batch_size: int = 32,
    out: str | os.PathLike | None = None,
) -> np.ndarray:
    """Sentence embeddings of ``texts``: ``(n_texts, dim)`` float32 (one text gives ``(1, dim)``).

    Args:
        texts: a string or a list of strings.
        model: an :class:`~layerscope.models.embedding.Embedder`, a :class:`~layerscope.ModelSpec`
            (``ModelSpec(source, trust_remote_code=True)``), or a source for ``load_embedder``
            (a sentence-transformers or MLX directory, a cached hub id; None: all-MiniLM-L6-v2).
        prompt_name: one of the model's own prompts (EmbeddingGemma: ``"query"``, ``"document"``, ...).
        batch_size: texts per forward pass.
        out: also write the run directory there (``vectors.npy``, ``texts.csv``, ``run.json``).

    Example:
        >>> vectors = layerscope.encode(["The cat sat.", "A dog ran."])
        >>> vectors.shape
        (2, 384)
    """
    config = EncodeConfig(
        texts=(texts,) if isinstance(texts, str) else tuple(texts),
        model=_spec_of(model),
        prompt_name=prompt_name,
        batch_size=batch_size,
    )
    result = execute(config, model if isinstance(model, Embedder) else None, out=out)
    return result.vectors


# ----- similar ----------------------------------------------------------------------------------------


def default_prompts(embedder: Embedder) -> tuple[str | None, str | None]:
    """The prompt names a retrieval model defines for queries and documents, else None."""
    prompts = embedder.prompts
    query = "query" if "query" in prompts else None
    document = next((n for n in ("document", "passage", "Retrieval-document") if n in prompts), None)
    return query, document


@dataclass(kw_only=True, repr=False)
class SimilarResult(Result):
    """Texts ranked by cosine similarity to a query.

    Attributes:
        table: ``rank, cosine, index, text``, best first; ``rank`` 1 is the most similar; ``index`` is the
            text's place in the input.
        prompts: the prompt names used, ``{"query": ..., "document": ...}`` (None: no prompt).
    """

    config: SimilarConfig
    table: pd.DataFrame
    prompts: dict[str, str | None]

    main_file: ClassVar[str] = "similar.csv"

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"similar": self.table}

    def record(self) -> dict:
        return {"prompts": self.prompts}

    @classmethod
    def from_files(cls, config, tables, arrays, record, run_dir) -> SimilarResult:
        """A saved similar run (see :func:`layerscope.load_run`)."""
        prompts = dict(record.get("prompts") or {"query": None, "document": None})
        return cls(config=config, table=tables["similar"], prompts=prompts, **cls.saved(record))

    def summary(self) -> list[str]:
        best = self.table.iloc[0]
        return [
            f"{len(self.table)} texts ranked against {self.config.query!r}; best {best['cosine']:+.4f}: {best['text']}"
        ]

    def lines(self) -> list[str]:
        """One line per text, best first: rank, cosine, text."""
        return [f"{row.rank:>3}  {row.cosine:+.4f}  {row.text}" for row in self.table.itertuples()]

    def to_json(self) -> str:
        return self.table[["rank", "cosine", "text"]].to_json(orient="records", indent=2)


def _prompt(choice: str, auto: str | None) -> str | None:
    return auto if choice == "auto" else None if choice == "none" else choice


def run_similar(config: SimilarConfig, model: Embedder | None = None) -> SimilarResult:
    """Rank ``config``'s texts against its query; no files written."""
    timings: dict[str, float] = {}
    texts = config.all_texts()
    embedder = config.load_embedder(model, timings)
    start = time.perf_counter()
    auto_query, auto_document = default_prompts(embedder)
    query_prompt = _prompt(config.query_prompt, auto_query)
    document_prompt = _prompt(config.document_prompt, auto_document)
    q = embedder.encode([config.query], prompt_name=query_prompt, batch_size=1)[0]  # (dim,)
    docs = embedder.encode(texts, prompt_name=document_prompt, batch_size=config.batch_size)  # (n, dim)
    cosine = docs @ q / (np.linalg.norm(docs, axis=1) * np.linalg.norm(q) + 1e-12)  # (n,)
    order = np.argsort(-cosine, kind="stable")
    table = pd.DataFrame(
        {
            "rank": np.arange(1, len(texts) + 1),
            "cosine": cosine[order],
            "index": order,
            "text": [texts[i] for i in order],
        }
    )
    timings["compute"] = time.perf_counter() - start
    return SimilarResult(
        config=config,
        table=table,
        prompts={"query": query_prompt, "document": document_prompt},
        models=[embedder_record(embedder)],
        timings=timings,
    )


def similar(
    query: str,
    texts: Sequence[str],
    model: Embedder | ModelSpec | str | os.PathLike | None = None,
    *,
    query_prompt: str | None = "auto",
    document_prompt: str | None = "auto",
    batch_size: int = 32,
    out: str | os.PathLike | None = None,
) -> SimilarResult:
    """Rank ``texts`` by cosine similarity to ``query``.

    With ``"auto"`` prompts the model's own ``query`` / ``document`` prompts are used when it defines them;
    None (or ``"none"``) uses no prompt.

    Returns:
        a :class:`SimilarResult`; its ``table`` has columns ``rank, cosine, index, text`` (best first, rank from 1).

    Example:
        >>> layerscope.similar("a pet", ["a cat", "a car"]).table.text.tolist()
        ['a cat', 'a car']
    """
    config = SimilarConfig(
        query=query,
        texts=(texts,) if isinstance(texts, str) else tuple(texts),
        model=_spec_of(model),
        query_prompt="none" if query_prompt is None else query_prompt,
        document_prompt="none" if document_prompt is None else document_prompt,
        batch_size=batch_size,
    )
    return execute(config, model if isinstance(model, Embedder) else None, out=out)
