"""Seed 002: word categories at every layer, PCA per layer or on one layer's basis, plus numbers.

Flow, per model (loaded one at a time, each freed before the next; only the captured arrays are kept):
token sets -> words in a context -> capture engine ``(layer, item, d_model)`` -> PCA projections per
layer and per-layer metrics (silhouette, between/within distance, residual norm, top-2 variance) ->
tables -> slider HTML + PNGs.

Layers are named as everywhere (:mod:`layerscope.capture.layer_spec`): ``embed`` (the embedding output),
``0``..``n-1`` (the output of decoder block ``k``), ``norm``; tables carry the name in ``layer`` and the
integer depth (0 = embed) in ``depth``. ``metrics`` also carries ``relative_depth``, ``depth / n_blocks``
(0 = embed, 1 = the last block, ``1 + 1 / n_blocks`` = norm): models of different depths are compared on
it in the grid, the slider and the metric curves.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis import layer_metrics, project_layers
from ..analysis.layer_projection import layer_order
from ..capture import capture_residuals, parse_layers, resolve_layer
from ..capture.contexts import word_prompts
from ..capture.layer_spec import (
    EMBED,
    FINAL_NORM,
    layer_depth,
    layer_name,
    layer_title,
)
from ..errors import LayerscopeError
from ..experiment import Result
from ..model_spec import ModelSpec, model_list, unique_name
from ..models import Model
from ..models.loading import given_or_loaded, models_given
from ..render.layer_grid import metrics_figure
from ..render.layer_projection_figure import LayerProjectionFigure
from ..rundir import model_record
from ..runner import execute
from ..tokensets import encode_sets
from ..tokensets.options import inline_words
from .findings import layer_phrase
from .layers_config import (  # noqa: F401  (declared in a light module)
    BASIS_MODES,
    DEFAULT_MODELS,
    LayersConfig,
    check_basis_syntax,
    check_layers_field,
    check_memory_budget,
)


@dataclass(kw_only=True, repr=False)
class LayersResult(Result):
    """The outcome of a layers run.

    Attributes:
        projection: one row per (model, layer, word): ``model, layer, depth, set, label, pc1..pcK``.
        metrics: one row per (model, layer): ``model, layer, depth, relative_depth, silhouette, between_within,
            residual_norm, top2_variance``; ``relative_depth`` is ``depth / n_blocks`` (0 = embed, 1 = the last
            block, ``1 + 1 / n_blocks`` = norm; :func:`layerscope.analysis.layer_metrics.relative_depth`).
        ratios: one row per (model, layer): the share of the layer's variance along each axis, ``ratio1..ratioK``.
        residuals: model name -> captured float32 ``(layer, item, d_model)`` for the layers in ``projection``
            (a ``np.memmap`` when the capture went to disk).
        titles: layer name -> its title in figures (``embed``, ``block 6``).
    """

    config: LayersConfig
    projection: pd.DataFrame
    metrics: pd.DataFrame
    ratios: pd.DataFrame
    residuals: dict[str, np.ndarray]
    titles: dict[str, str]

    @property
    def table(self) -> pd.DataFrame:
        """The projection table (as ``layerscope.tokens`` results call it)."""
        return self.projection

    def title(self) -> str:
        sets = ", ".join(dict.fromkeys(self.projection["set"]))
        basis = str(self.config.basis)
        modes = {"layer": "a PCA per layer", "embedding": "the embedding output's PCA"}
        resolved = self.models[0].get("basis") if self.models else None  # e.g. -1 -> the last block's name
        shown = modes.get(basis) or f"the PCA of {self.titles.get(resolved, resolved or basis)}"
        return f"{sets} across layers ({shown}; context {self.config.context!r})"

    def _placed(self) -> pd.DataFrame:
        """``projection`` with each layer's ``relative_depth`` (from ``metrics``), for the figures."""
        if "relative_depth" not in self.metrics.columns or "relative_depth" in self.projection.columns:
            return self.projection
        depths = self.metrics[["model", "layer", "relative_depth"]]
        return self.projection.merge(depths, on=["model", "layer"], how="left", sort=False)

    def projection_figure(self):
        """The one description of the projections (:class:`~layerscope.render.layer_projection_figure.
        LayerProjectionFigure`), models side by side (aligned on relative depth when theirs differ)."""
        fixed = self.config.basis != "layer"
        return LayerProjectionFigure(self.title(), self._placed(), self.ratios, self.titles, fixed)

    def figure(self):
        """The plotly figure with a layer slider, models side by side (aligned on relative depth when theirs differ)."""
        return self.projection_figure().plotly()

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"projection": self.projection, "metrics": self.metrics, "ratios": self.ratios}

    def main_table(self) -> pd.DataFrame:
        return self.metrics

    @classmethod
    def from_files(cls, config, tables, arrays, record, run_dir) -> LayersResult:
        """A saved layers run (see :func:`layerscope.load_run`); ``residuals`` is empty (the run keeps no capture)."""
        models = record.get("models") or []
        named = [*tables["metrics"]["layer"], *(m.get("basis") for m in models if m.get("basis"))]
        titles = {
            str(n): layer_title(FINAL_NORM if n == FINAL_NORM else 0 if n == EMBED else int(n) + 1) for n in named
        }
        ratios = tables.get("ratios", pd.DataFrame(columns=["model", "layer"]))
        metrics = tables["metrics"]
        blocks = {m.get("display_name", m.get("name")): m.get("n_layers") for m in models}
        if "relative_depth" not in metrics.columns and metrics["model"].map(blocks).notna().all():
            metrics = metrics.copy()  # a run saved before the column existed
            metrics.insert(3, "relative_depth", metrics["depth"] / metrics["model"].map(blocks).astype(float))
        return cls(
            config=config,
            projection=tables["projection"],
            metrics=metrics,
            ratios=ratios,
            residuals={},
            titles=titles,
            **cls.saved(record),
        )

    def figures(self) -> dict:
        return {"index": self.figure}

    def images(self) -> dict:
        sets = ", ".join(dict.fromkeys(self.projection["set"]))
        projections = self.projection_figure()
        images = {"grid": projections.png}
        for layer in layer_order(self.projection):
            images[f"layers/{layer_file_stem(layer)}"] = lambda layer=layer: projections.layer_png(layer)
        images["metrics"] = lambda: metrics_figure(self.metrics, title=sets)
        return images

    def best_layers(self) -> dict[str, tuple[str, float] | None]:
        """Per model, the layer with the highest silhouette and that silhouette (None when undefined)."""
        best = {}
        for model, rows in self.metrics.groupby("model", sort=False):
            if rows["silhouette"].notna().any():
                row = rows.loc[rows["silhouette"].idxmax()]
                best[model] = (str(row["layer"]), float(row["silhouette"]))
            else:
                best[model] = None
        return best

    def record(self) -> dict:
        return {
            "best_silhouette": {
                model: {"layer": b[0], "silhouette": b[1]} if b else None for model, b in self.best_layers().items()
            },
            "findings": self.findings(),
        }

    def findings(self) -> dict[str, str]:
        """``{"index": sentence}``: per model, the layer where the sets separate best (silhouette)."""
        names = list(dict.fromkeys(map(str, self.projection["set"])))
        sets = " and ".join(names) if len(names) <= 2 else f"the {len(names)} word sets"
        best = self.best_layers()
        said = []
        for model, found in best.items():
            where = (
                f"at {layer_phrase(found[0])} (silhouette {found[1]:.2f})"
                if found
                else "nowhere measurable (no silhouette)"
            )
            said.append(f"{model}: {where}" if len(best) > 1 else where)
        return {"index": f"{sets} separate best " + "; ".join(said)} if said else {}

    def summary(self) -> list[str]:
        lines = []
        for model, best in self.best_layers().items():
            n = int((self.metrics["model"] == model).sum())
            note = f", best separated at {self.titles.get(best[0], best[0])} (silhouette {best[1]:.2f})" if best else ""
            lines.append(f"{model}: {n} layers{note}")
        return lines


def layer_file_stem(layer: str) -> str:
    """``layer-embed``, ``layer-00`` (block 0), ..., ``layer-norm``: the per-layer PNG under ``layers/``."""
    return f"layer-{int(layer):02d}" if layer.isdigit() else f"layer-{layer}"


def _basis_depth(basis: str, n_layers: int):

    text = str(basis).strip()
    if text == "layer":
        return None
    if text in ("embedding", EMBED):
        return 0
    return resolve_layer(text, n_layers)


def run_layers(config: LayersConfig, models=None) -> LayersResult:
    """Run the layers experiment; no files written.

    Args:
        config: what to run.
        models: None loads each of ``config.models`` in turn (each freed before the next); a loaded model
            (the first spec's; the others are loaded), or a list with one loaded model (or None: load it) per
            ``config.models``.
    """
    sets = config.word_sets()
    given = models_given(config.models, models)
    projections, metrics, ratios, residuals, records = [], [], [], {}, []
    titles: dict[str, str] = {}
    timings: dict[str, float] = {"capture": 0.0, "analysis": 0.0}
    for spec, loaded in zip(config.models, given):
        model = given_or_loaded(spec, loaded, timings)
        name = unique_name(model.name, residuals)
        layers = parse_layers(config.layers, model.n_layers)  # the range needs the model: errors name the layer
        try:
            basis = _basis_depth(config.basis, model.n_layers)
        except LayerscopeError as exc:
            raise LayerscopeError(f"basis {config.basis!r} is not a layer of {name}: {exc}") from None
        captured = layers + ([basis] if basis is not None and basis not in layers else [])

        start = time.perf_counter()
        items = encode_sets(model.tokenizer, sets, leading_space=config.leading_space)
        prompts = word_prompts(model, items, config.context)
        array = capture_residuals(
            model,
            prompts,
            captured,
            pool=config.multi_token,
            batch_size=config.batch_size,
            memory_budget=config.memory_budget,
            description=f"Capturing {name}",
        )
        timings["capture"] += time.perf_counter() - start

        start = time.perf_counter()
        coords, shares = project_layers(array, config.dims, None if basis is None else captured.index(basis))
        names = [layer_name(d) for d in layers]
        depths = [layer_depth(d, model.n_layers) for d in layers]
        titles.update({layer_name(d): layer_title(d) for d in captured})  # the basis too, for the title
        labels = [item.set for item in items]
        for slot, (layer, depth) in enumerate(zip(names, depths)):
            frame = pd.DataFrame(
                {"model": name, "layer": layer, "depth": depth, "set": labels, "label": [i.label for i in items]}
            )
            for k in range(config.dims):
                frame[f"pc{k + 1}"] = coords[slot, :, k]
            projections.append(frame)
            ratios.append(
                {"model": name, "layer": layer, **{f"ratio{k + 1}": shares[slot, k] for k in range(config.dims)}}
            )
        table = layer_metrics(array[: len(layers)], labels, names, depths, n_blocks=model.n_layers)
        table.insert(0, "model", name)
        metrics.append(table)
        residuals[name] = array[: len(layers)]
        timings["analysis"] += time.perf_counter() - start
        records.append(model_record(model, name, layers=names, basis=None if basis is None else layer_name(basis)))
        del model
        gc.collect()
    return LayersResult(
        config=config,
        projection=pd.concat(projections, ignore_index=True),
        metrics=pd.concat(metrics, ignore_index=True),
        ratios=pd.DataFrame(ratios),
        residuals=residuals,
        titles=titles,
        models=records,
        timings=timings,
    )


def layers(
    sets: str | Sequence[str] = (),
    *,
    models=None,
    model=None,
    basis: str | int = "layer",
    dims: int = 2,
    layers: str | int | Sequence[int | str] = "all",
    context: str = "bos",
    tokens: Sequence[str] | str | None = None,
    leading_space: bool = False,
    multi_token: str = "mean",
    batch_size: int = 64,
    memory_budget: int | str | None = None,
    out: str | Path | None = None,
) -> LayersResult:
    """Word categories at every layer, projected with PCA, with per-layer separation numbers (seed 002).

    Args:
        sets: built-in set names or files (default: ``categories`` unless ``tokens``).
        models: a loaded model, a source, a :class:`ModelSpec`, None for the default model, or a list of
            these to see several models side by side (loaded one at a time); ``model=`` is the same parameter.
        basis: ``"layer"``, ``"embedding"`` or a layer name (``"embed"``, ``6``, ``-1``).
        layers: ``"all"``, names such as ``"embed,0,6,-1"`` or a list of them.
        out: also write the run directory there.

    Example:
        >>> result = layerscope.layers("categories", basis="embedding")
        >>> result.metrics[["layer", "silhouette", "residual_norm"]].head()
        >>> result.figure()               # layer slider, in Jupyter
        >>> result.save("runs/categories")
    """
    given = model_list(models, model)
    if isinstance(layers, (list, tuple)):
        layers = ",".join(map(str, layers))
    config = LayersConfig(
        models=tuple(ModelSpec.of(m) for m in given),
        sets=(sets,) if isinstance(sets, str) else tuple(sets),
        tokens=inline_words(tokens),
        basis=str(basis),
        dims=dims,
        layers=str(layers),
        context=context,
        leading_space=leading_space,
        multi_token=multi_token,
        batch_size=batch_size,
        memory_budget=memory_budget,
    )
    loaded = [m if isinstance(m, Model) else None for m in given]
    return execute(config, loaded if any(m is not None for m in loaded) else None, out=out)
