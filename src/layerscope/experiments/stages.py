"""Inside an embedding model: sentence vectors at every stage (``embed``, layers ``0..n-1``, pooling, Dense,
Normalize), with a PCA per stage."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..analysis import fit_pca
from ..capture.embedding_stages import StageVectors, capture_stages
from ..errors import LayerscopeError, choices_text
from ..experiment import Result
from ..model_spec import ModelSpec
from ..models.embedding import Embedder
from ..render.figure_page import figures_page
from ..render.scatter import ProjectionFigure, projections_png
from ..runner import execute
from .encode import _spec_of, embedder_record
from .findings import percent
from .stages_config import StagesConfig  # noqa: F401  (declared in a light module)


@dataclass(kw_only=True, repr=False)
class StagesResult(Result):
    """Stage vectors and their projections.

    Attributes:
        stages: the captured vectors (``stages.vectors[name]`` is ``(n_texts, d_stage)``), names in model order.
        table: one row per (stage, text): ``stage, depth, index, text, pc1..pcK`` (PCA fitted per stage);
            ``depth`` is the stage's place in model order: 0 = ``embed``, ``k + 1`` = layer ``k``, then
            ``pooling``, ``dense.0``, ..., ``normalize``.
        explained: ``{stage: [ratio per component]}``.
    """

    config: StagesConfig
    stages: StageVectors
    table: pd.DataFrame
    explained: dict[str, list[float]]

    @property
    def names(self) -> list[str]:
        return list(self.stages.names)

    def projection(self, stage: str | None = None):
        """The PCA scatter of one stage (default: the last, the model's output) as one
        :class:`~layerscope.render.scatter.ProjectionFigure`, from which its HTML and its PNG panel are drawn."""
        stage = self.names[-1] if stage is None else str(stage)
        if stage not in self.explained:
            raise LayerscopeError(f"unknown stage {stage!r}; valid: {choices_text(self.names)}")
        rows = self.table[self.table["stage"] == stage].assign(set="texts", label=lambda t: t["text"].str.slice(0, 40))
        name = ", ".join(self.model_names)
        return ProjectionFigure(f"{name}: {stage}", rows, self.explained[stage], connect=False)

    def figure(self, stage: str | None = None):
        """The PCA scatter of one stage (default: the last, the model's output)."""
        return self.projection(stage).plotly()

    def stage_figures(self) -> dict[str, Callable[[], object]]:
        """``{stage: () -> plotly figure}`` in model order: the figures of the page ``index.html``."""
        return {name: (lambda name=name: self.figure(name)) for name in self.names}

    def main_figure(self):
        return self.figure()

    def html(self) -> str:
        """One self-contained page: a heading and the figure of every stage (plotly.js inlined once)."""
        figures = [(name, make()) for name, make in self.stage_figures().items()]
        return figures_page(figures, title=f"{', '.join(self.model_names)}: stages")

    # ----- the run directory -------------------------------------------------------------------------
    def tables(self) -> dict[str, pd.DataFrame]:
        return {"projection": self.table}

    def arrays(self) -> dict:
        return {"stages": dict(self.stages.vectors)}  # stages.npz, one array per stage

    def texts(self) -> dict[str, str]:
        return {"index.html": self.html()}

    def images(self) -> dict:
        """``index.png``: every stage's projection side by side (the page ``index.html`` as one image)."""
        panels = {name: self.projection(name) for name in self.names}
        title = f"{', '.join(self.model_names)}: stages"
        return {"index": lambda: projections_png(panels, title=title)}

    def record(self) -> dict:
        return {"stages": self.names, "explained_variance_ratio": self.explained, "findings": self.findings()}

    def findings(self) -> dict[str, str]:
        """``{"index": sentence}``: how much of the output's variance its first two components explain."""
        if not self.names or not self.explained.get(self.names[-1]):
            return {}
        ratios = self.explained[self.names[-1]]
        shown = ", ".join(f"PC{i + 1} {percent(r)}" for i, r in enumerate(ratios[:3]))
        return {"index": f"at {self.names[-1]} (the model's output) {shown} of the variance"}

    @classmethod
    def from_files(cls, config, tables, arrays, record, run_dir) -> StagesResult:
        """A saved stages run (see :func:`layerscope.load_run`): the vectors read from ``stages.npz``."""
        saved = arrays["stages"]
        names = [str(name) for name in record.get("stages") or list(saved)]
        stages = StageVectors(names=names, vectors={name: np.asarray(saved[name]) for name in names})
        explained = {str(k): [float(v) for v in ratios] for k, ratios in record["explained_variance_ratio"].items()}
        return cls(config=config, stages=stages, table=tables["projection"], explained=explained, **cls.saved(record))

    def summary(self) -> list[str]:
        return [
            f"{len(self.table) // max(len(self.names), 1)} texts through {len(self.names)} stages: {', '.join(self.names)}"
        ]


def run_stages(config: StagesConfig, model: Embedder | None = None) -> StagesResult:
    """Capture every stage of ``model`` (loaded from ``config.model`` when None) and fit a PCA per stage."""
    timings: dict[str, float] = {}
    texts = config.all_texts()
    embedder = config.load_embedder(model, timings)
    start = time.perf_counter()
    captured = capture_stages(embedder, texts, prompt_name=config.prompt_name, batch_size=config.batch_size)
    frames, explained = [], {}
    for depth, name in enumerate(captured.names):
        basis = fit_pca(captured.vectors[name], config.dims)
        coords = basis.transform(captured.vectors[name])
        frame = pd.DataFrame({"stage": name, "depth": depth, "index": np.arange(len(texts)), "text": texts})
        for k in range(config.dims):
            frame[f"pc{k + 1}"] = coords[:, k]
        frames.append(frame)
        explained[name] = [float(r) for r in basis.explained_variance_ratio]
    timings["compute"] = time.perf_counter() - start
    return StagesResult(
        config=config,
        stages=captured,
        table=pd.concat(frames, ignore_index=True),
        explained=explained,
        models=[embedder_record(embedder)],
        timings=timings,
    )


def stages(
    texts: str | Sequence[str],
    model: Embedder | ModelSpec | str | os.PathLike | None = None,
    *,
    prompt_name: str | None = None,
    dims: int = 2,
    batch_size: int = 32,
    out: str | os.PathLike | None = None,
) -> StagesResult:
    """Sentence vectors of ``texts`` at every stage of an embedding model, with a PCA per stage.

    Args:
        model: an :class:`~layerscope.models.embedding.Embedder`, a :class:`~layerscope.ModelSpec` or a
            source (None: all-MiniLM-L6-v2).
        out: also write the run directory there (``stages.npz``, ``projection.csv``, ``index.html``).

    Example:
        >>> result = layerscope.stages(["a cat", "a dog", "a car"], "embeddinggemma-mlx")
        >>> result.names[:2], result.names[-3:]
        (['embed', '0'], ['dense.0', 'dense.1', 'normalize'])
        >>> result.figure("dense.0")
    """
    config = StagesConfig(
        texts=(texts,) if isinstance(texts, str) else tuple(texts),
        model=_spec_of(model),
        prompt_name=prompt_name,
        dims=dims,
        batch_size=batch_size,
    )
    return execute(config, model if isinstance(model, Embedder) else None, out=out)
