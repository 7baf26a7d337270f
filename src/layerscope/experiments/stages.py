"""Inside an embedding model: sentence vectors at every stage (layers, pooling, Dense, Normalize), PCA per stage."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..analysis import fit_pca
from ..atomic import atomic_path, write_text
from ..capture.embedding_stages import StageVectors, capture_stages
from ..errors import LayerscopeError
from ..models.embedding import Embedder, load_embedder
from ..rundir import default_run_dir, write_run_json


@dataclass
class StagesConfig:
    """What ``layerscope stages`` runs: texts, model source, prompt name, PCA dimensions, batch size."""

    texts: list[str]
    model: str | None = None
    prompt_name: str | None = None
    dims: int = 2
    batch_size: int = 32


@dataclass
class StagesResult:
    """Stage vectors and their projections.

    Attributes:
        stages: the captured vectors (``stages.vectors[name]`` is ``(n_texts, d_stage)``).
        table: one row per (stage, text): ``stage, index, text, pc1..pcK`` (PCA fitted per stage).
        explained: ``{stage: [ratio per component]}``.
    """

    stages: StageVectors
    table: pd.DataFrame
    explained: dict[str, list[float]]
    config: StagesConfig
    model_name: str
    timings: dict[str, float] = field(default_factory=dict)
    _embedder: Embedder | None = field(default=None, repr=False)

    def figure(self, stage: str):
        """The PCA scatter of one stage."""
        from ..render.scatter import projection_figure

        if stage not in self.explained:
            raise LayerscopeError(f"unknown stage {stage!r}; valid: {', '.join(self.stages.names)}")
        rows = self.table[self.table["stage"] == stage].assign(set="texts", label=lambda t: t["text"].str.slice(0, 40))
        return projection_figure(rows, self.explained[stage], title=f"{self.model_name}: {stage}", connect=False)

    def save(self, out: str | Path) -> Path:
        """Write ``stages.npz``, ``projection.csv``, ``index.html`` (one figure per stage) and ``run.json``."""
        from ..render.figure_page import figures_page

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with atomic_path(out / "stages.npz") as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **self.stages.vectors)
        with atomic_path(out / "projection.csv") as tmp:
            self.table.to_csv(tmp, index=False)
        page = figures_page([(s, self.figure(s)) for s in self.stages.names], title=f"{self.model_name}: stages")
        write_text(out / "index.html", page)
        record = None
        if self._embedder is not None:
            e = self._embedder
            record = {"source": e.source, "name": e.name, "fingerprint": e.fingerprint, "stages": self.stages.names}
        write_run_json(out, "stages", self.config, [], {**self.timings, "write": time.perf_counter() - start},
                       embedder=record, explained_variance_ratio=self.explained)
        return out


def stages(
    texts: Sequence[str],
    model: Embedder | str | os.PathLike | None = None,
    *,
    prompt_name: str | None = None,
    dims: int = 2,
    batch_size: int = 32,
    out: str | Path | None = None,
) -> StagesResult:
    """Sentence vectors of ``texts`` at every stage of an embedding model, with a PCA per stage.

    Example:
        >>> result = layerscope.experiments.stages.stages(["a cat", "a dog", "a car"], "embeddinggemma-mlx")
        >>> result.stages.names[-3:]
        ['dense.0', 'dense.1', 'normalize']
        >>> result.figure("dense.0")
    """
    texts = list(texts)
    if dims not in (2, 3):
        raise LayerscopeError(f"dims {dims} is not supported; valid: 2, 3")
    if len(texts) < dims:
        raise LayerscopeError(f"{len(texts)} texts cannot span {dims} PCA dimensions; give at least {dims}")
    timings = {}
    start = time.perf_counter()
    embedder = model if isinstance(model, Embedder) else load_embedder(model)
    timings["load"] = time.perf_counter() - start
    start = time.perf_counter()
    captured = capture_stages(embedder, texts, prompt_name=prompt_name, batch_size=batch_size)
    frames, explained = [], {}
    for name in captured.names:
        basis = fit_pca(captured.vectors[name], dims)
        coords = basis.transform(captured.vectors[name])
        frame = pd.DataFrame({"stage": name, "index": np.arange(len(texts)), "text": texts})
        for k in range(dims):
            frame[f"pc{k + 1}"] = coords[:, k]
        frames.append(frame)
        explained[name] = [float(r) for r in basis.explained_variance_ratio]
    timings["compute"] = time.perf_counter() - start
    source = embedder.source if isinstance(model, Embedder) else (None if model is None else os.fspath(model))
    config = StagesConfig(texts=texts, model=source, prompt_name=prompt_name, dims=dims, batch_size=batch_size)
    result = StagesResult(captured, pd.concat(frames, ignore_index=True), explained, config, embedder.name, timings, embedder)
    if out is not None:
        result.save(out)
    return result


def default_out() -> Path:
    return default_run_dir("stages")
