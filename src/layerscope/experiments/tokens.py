"""Seed 000: embedding rows of token sets, projected with PCA to 2-D or 3-D.

Flow: token sets -> token ids -> rows of the input embedding matrix (pooled per word) -> PCA
(fitted on all rows, or on one set and applied to the others) -> table + figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..analysis import PCABasis, fit_pca
from ..atomic import atomic_path
from ..errors import LayerscopeError, choices_text
from ..models import Model, model_for_run
from ..rundir import default_run_dir, write_run_json
from ..tokensets import TokenItem, check_policy, encode_sets, merge_sets, pool_rows, resolve_set


@dataclass
class TokensConfig:
    """What ``layerscope tokens`` runs.

    Attributes:
        sets: built-in set names or files (``["digits", "number-words"]``).
        inline: extra sets given inline, ``{name: [words]}``.
        dims: 2 or 3.
        basis_set: fit the PCA on this set only and project every set onto it; None fits on all rows.
        leading_space: tokenize ``" word"`` instead of ``"word"``.
        multi_token: how a word of several tokens becomes one row: ``mean``, ``first`` or ``last``.
        model: the model source (None: the default model).
    """

    sets: list[str] = field(default_factory=lambda: ["digits", "number-words"])
    inline: dict[str, list[str]] = field(default_factory=dict)
    dims: int = 3
    basis_set: str | None = None
    leading_space: bool = False
    multi_token: str = "mean"
    model: str | None = None


@dataclass
class TokensResult:
    """The outcome of a tokens run.

    Attributes:
        table: one row per word: ``set, label, text, token_ids, n_tokens, split, pc1..pcK``.
        embeddings: ``(n_words, d_model)`` float32, the pooled embedding rows in table order.
        basis: the fitted PCA basis.
        config: the run's config; model_name: the model's display name.
    """

    table: pd.DataFrame
    embeddings: np.ndarray
    basis: PCABasis
    config: TokensConfig
    model_name: str
    timings: dict[str, float]
    _model: Model | None = field(default=None, repr=False)

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
        return f"{self.model_name}: input embeddings of {sets} ({fitted})"

    def figure(self):
        """The interactive plotly figure (shows inline in Jupyter)."""
        from ..render.scatter import projection_figure

        return projection_figure(self.table, self.explained_variance_ratio, title=self.title())

    def save(self, out: str | Path) -> Path:
        """Write ``projection.csv``, ``embeddings.npy``, ``index.html``, ``figure.png`` and ``run.json``."""
        from ..render.scatter import write_html
        from ..render.static import projection_png

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with atomic_path(out / "projection.csv") as tmp:
            self.table.to_csv(tmp, index=False)
        with atomic_path(out / "embeddings.npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, self.embeddings)
        write_html(self.figure(), out / "index.html")
        projection_png(self.table, self.explained_variance_ratio, out / "figure.png", title=self.title())
        timings = {**self.timings, "write": time.perf_counter() - start}
        write_run_json(
            out,
            "tokens",
            self.config,
            [self._model] if self._model is not None else [],
            timings,
            explained_variance_ratio=self.explained_variance_ratio,
            split_words=self.split_words,
        )
        return out


def gather_sets(config: TokensConfig) -> dict[str, list[str]]:
    """Resolve the config's set names/files and inline sets into one ``{set: words}`` mapping."""
    parts = [resolve_set(name) for name in config.sets] + [{k: v} for k, v in config.inline.items()]
    sets = merge_sets(parts)
    if not sets:
        raise LayerscopeError("no token set given; use --set (e.g. digits, number-words, categories) or --tokens")
    return sets


def embedding_rows(model: Model, items: list[TokenItem], policy: str) -> np.ndarray:
    """Pooled input-embedding rows, shape ``(len(items), d_model)``, float32."""
    matrix = model.embedding_matrix
    with torch.no_grad():
        rows = [pool_rows(matrix[list(item.token_ids)].float().cpu().numpy(), policy) for item in items]
    return np.stack(rows).astype(np.float32)


def validate(config: TokensConfig) -> dict[str, list[str]]:
    """Check the config before any model loads; returns the resolved ``{set: words}``."""
    if config.dims not in (2, 3):
        raise LayerscopeError(f"--dims {config.dims} is not supported; valid: 2, 3")
    check_policy(config.multi_token)
    sets = gather_sets(config)
    if config.basis_set is not None and config.basis_set not in sets:
        raise LayerscopeError(f"basis set {config.basis_set!r} is not among the sets; valid: {choices_text(sets)}")
    return sets


def run_tokens(config: TokensConfig, model: Model | None = None) -> TokensResult:
    """Run the tokens experiment; loads ``config.model`` unless a loaded ``model`` is given."""
    sets = validate(config)
    timings: dict[str, float] = {}
    model = model_for_run(model, config.model, timings)

    start = time.perf_counter()
    items = encode_sets(model.tokenizer, sets, leading_space=config.leading_space)
    rows = embedding_rows(model, items, config.multi_token)
    fit_rows = rows if config.basis_set is None else rows[[i.set == config.basis_set for i in items]]
    basis = fit_pca(fit_rows, config.dims)
    coords = basis.transform(rows)
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
        table=table, embeddings=rows, basis=basis, config=config, model_name=model.name, timings=timings, _model=model
    )


def tokens(
    sets: str | list[str] = ("digits", "number-words"),
    *,
    model: str | Model | None = None,
    dims: int = 3,
    tokens: list[str] | str | None = None,
    basis_set: str | None = None,
    leading_space: bool = False,
    multi_token: str = "mean",
    out: str | Path | None = None,
) -> TokensResult:
    """Embedding rows of token sets, projected with PCA.

    Example:
        >>> result = layerscope.tokens(["digits", "number-words"], dims=3)
        >>> result.figure()          # interactive in Jupyter
        >>> result.table.head()
        >>> result.save("runs/digits")
    """
    sets_list = [sets] if isinstance(sets, str) else list(sets)
    inline: dict[str, list[str]] = {}
    if tokens is not None:
        from ..tokensets import inline_set

        inline = inline_set(tokens) if isinstance(tokens, str) else {"tokens": list(tokens)}
    loaded = model if isinstance(model, Model) else None
    config = TokensConfig(
        sets=sets_list,
        inline=inline,
        dims=dims,
        basis_set=basis_set,
        leading_space=leading_space,
        multi_token=multi_token,
        model=loaded.source if loaded else model,
    )
    result = run_tokens(config, loaded)
    if out is not None:
        result.save(out)
    return result


def default_out() -> Path:
    return default_run_dir("tokens")
