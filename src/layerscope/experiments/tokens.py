"""Seed 000: embedding rows of token sets, projected with PCA to 2-D or 3-D.

Flow: token sets -> token ids -> rows of the input embedding matrix (pooled per word) -> PCA
(fitted on all rows, or on one set and applied to the others) -> table + figures.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis import PCABasis, fit_pca
from ..experiment import Result
from ..model_spec import ModelSpec
from ..models import Model
from ..models.loading import given_or_loaded
from ..render.scatter import ProjectionFigure
from ..rundir import model_record
from ..runner import execute
from ..tokensets import TokenItem, encode_sets, pool_rows
from ..tokensets.builtin import ORDERED_SETS
from ..tokensets.options import inline_words
from .findings import percent
from .tokens_config import TokensConfig  # noqa: F401  (declared in a light module)


@dataclass(kw_only=True, repr=False)
class TokensResult(Result):
    """The outcome of a tokens run.

    Attributes:
        table: one row per word: ``set, label, text, token_ids, n_tokens, split, pc1..pcK``.
        embeddings: ``(n_words, d_model)`` float32, the pooled embedding rows in table order.
        basis: the fitted PCA basis.
    """

    config: TokensConfig
    table: pd.DataFrame
    embeddings: np.ndarray
    basis: PCABasis

    @property
    def explained_variance_ratio(self) -> list[float]:
        return [float(v) for v in self.basis.explained_variance_ratio]

    @property
    def split_words(self) -> list[str]:
        """Words that the tokenizer split into several tokens."""
        return list(self.table.loc[self.table["split"], "label"])

    def title(self) -> str:
        sets = ", ".join(dict.fromkeys(self.table["set"]))
        fitted = f"basis: {self.config.basis_set}" if self.config.basis_set else "basis: all rows"
        return f"{', '.join(self.model_names)}: input embeddings of {sets} ({fitted})"

    def projection(self):
        """The projection as one :class:`~layerscope.render.scatter.ProjectionFigure`, from which the HTML and the
        PNG are drawn."""
        return ProjectionFigure(self.title(), self.table, self.explained_variance_ratio, connect=self.joined_sets)

    def figure(self):
        """The interactive plotly figure (shows inline in Jupyter)."""
        return self.projection().plotly()

    @property
    def joined_sets(self) -> set[str]:
        """The sets a line joins: the built-in ordered ones and ``config.ordered``."""
        return set(ORDERED_SETS) | set(self.config.ordered)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"projection": self.table}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"embeddings": self.embeddings}

    def figures(self) -> dict:
        return {"index": self.figure}

    def images(self) -> dict:
        return {"figure": lambda: self.projection().png()}

    def record(self) -> dict:
        return {
            "explained_variance_ratio": self.explained_variance_ratio,
            "split_words": self.split_words,
            "findings": self.findings(),
        }

    def findings(self) -> dict[str, str]:
        """``{"index": sentence}``: the variance each component explains, and the words split into several tokens."""
        ratios = self.explained_variance_ratio
        if not ratios:
            return {}
        sentence = f"PC1 explains {percent(ratios[0])} of the variance"
        if len(ratios) > 1:
            rest = ", ".join(f"PC{i + 1} {percent(r)}" for i, r in enumerate(ratios[1:], start=1))
            sentence += f", {rest} ({percent(sum(ratios))} together)"
        split = len(self.split_words)
        sentence += f"; {split} of {len(self.table)} words are split into several tokens" if split else ""
        return {"index": sentence}

    @classmethod
    def from_files(cls, config, tables, arrays, record, run_dir) -> TokensResult:
        """A saved tokens run (see :func:`layerscope.load_run`); the PCA basis is fitted again on the saved rows."""
        table, embeddings = tables["projection"], arrays["embeddings"]
        rows = np.asarray(embeddings)
        fit_rows = rows if config.basis_set is None else rows[(table["set"] == config.basis_set).to_numpy()]
        basis = fit_pca(fit_rows, config.dims)
        return cls(config=config, table=table, embeddings=embeddings, basis=basis, **cls.saved(record))

    def summary(self) -> list[str]:
        ratio = ", ".join(f"PC{i + 1} {100 * r:.1f}%" for i, r in enumerate(self.explained_variance_ratio))
        lines = [f"{len(self.table)} words, explained variance: {ratio}"]
        if self.split_words:
            lines.append(f"split into several tokens: {', '.join(self.split_words)}")
        return lines


def embedding_rows(model: Model, items: list[TokenItem], policy: str) -> np.ndarray:
    """Pooled input-embedding rows, shape ``(len(items), d_model)``, float32.

    The word's own token rows only, for every kind of model: an encoder's special tokens
    (``[CLS]``, ``[SEP]``) are not part of the word and are not read here.
    """
    import torch

    with torch.no_grad(), model.materialized(model.parts.embed):  # offloaded rows are loaded for the block
        matrix = model.embedding_matrix
        rows = [pool_rows(matrix[list(item.token_ids)].float().cpu().numpy(), policy) for item in items]
    return np.stack(rows).astype(np.float32)


def unit_rows(rows: np.ndarray) -> np.ndarray:
    """``(n, d)`` rows each divided by its L2 norm (a zero row stays zero)."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms > 0, norms, 1)).astype(np.float32)


def run_tokens(config: TokensConfig, model: Model | None = None) -> TokensResult:
    """Run the tokens experiment on ``model`` (loaded from ``config.model`` when None); no files written."""
    timings: dict[str, float] = {}
    sets = config.word_sets()
    model = given_or_loaded(config.model, model, timings)

    start = time.perf_counter()
    items = encode_sets(model.tokenizer, sets, leading_space=config.leading_space)
    rows = embedding_rows(model, items, config.multi_token)
    projected = unit_rows(rows) if config.normalize else rows
    fit_rows = projected if config.basis_set is None else projected[[i.set == config.basis_set for i in items]]
    basis = fit_pca(fit_rows, config.dims)
    coords = basis.transform(projected)
    timings["compute"] = time.perf_counter() - start

    table = pd.DataFrame(
        {
            "set": [i.set for i in items],
            "label": [i.label for i in items],
            "text": [i.text for i in items],
            "token_ids": [" ".join(map(str, i.token_ids)) for i in items],
            "n_tokens": [len(i.token_ids) for i in items],
            "split": [i.is_split for i in items],
        }
    )
    for k in range(config.dims):
        table[f"pc{k + 1}"] = coords[:, k]
    return TokensResult(
        config=config, table=table, embeddings=rows, basis=basis, models=[model_record(model)], timings=timings
    )


def tokens(
    sets: str | Sequence[str] = (),
    *,
    model: ModelSpec | Model | str | None = None,
    dims: int = 3,
    tokens: Sequence[str] | str | None = None,
    basis_set: str | None = None,
    ordered: Sequence[str] = (),
    leading_space: bool = False,
    multi_token: str = "mean",
    normalize: bool = False,
    out: str | Path | None = None,
) -> TokensResult:
    """Embedding rows of token sets, projected with PCA (seed 000).

    Args:
        sets: built-in set names or files (default: ``digits`` and ``number-words`` unless ``tokens``).
        model: a loaded model, a source, a :class:`ModelSpec`, or None for the default model.
        tokens: extra words, a list or ``"a,b,c"``.
        out: also write the run directory there.

    Example:
        >>> result = layerscope.tokens(["digits", "number-words"], dims=3)
        >>> result.figure()          # interactive in Jupyter
        >>> result.table.head()
        >>> result.save("runs/digits")
    """
    config = TokensConfig(
        model=ModelSpec.of(model),
        sets=(sets,) if isinstance(sets, str) else tuple(sets),
        tokens=inline_words(tokens),
        dims=dims,
        basis_set=basis_set,
        ordered=(ordered,) if isinstance(ordered, str) else tuple(ordered),
        leading_space=leading_space,
        multi_token=multi_token,
        normalize=normalize,
    )
    return execute(config, model if isinstance(model, Model) else None, out=out)
