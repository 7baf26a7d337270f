"""Seed 002: word categories at every layer, PCA per layer or on one layer's basis, plus numbers.

Flow, per model (loaded one at a time; only the captured arrays are kept): token sets -> words in a
context -> capture engine ``(layer, item, d_model)`` -> PCA projections per layer and per-layer metrics
(silhouette, between/within distance, residual norm, top-2 variance) -> tables -> slider HTML + PNGs.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis import layer_metrics, project_layers
from ..atomic import atomic_path
from ..capture import capture_residuals, layer_name, layer_title, parse_layers, resolve_layer
from ..capture.contexts import check_context, word_prompts
from ..errors import LayerscopeError
from ..models import Model, load_model
from ..rundir import default_run_dir, model_record, write_run_json
from ..tokensets import check_policy, encode_sets
from .tokens import gather_sets

BASIS_MODES = ("layer", "embedding")


@dataclass
class LayersConfig:
    """What ``layerscope layers`` runs.

    Attributes:
        models: model sources, shown side by side (None: the default model).
        sets: built-in set names or files; inline: extra ``{name: [words]}``.
        dims: 2 or 3 principal components.
        basis: ``"layer"`` (each layer its own PCA), ``"embedding"`` (every layer on layer 0's basis)
            or a layer index (as text or int; negative from the end).
        layers: ``"all"`` or indices such as ``"0,1,6,-1"``.
        context: ``"bos"`` (the word alone after BOS), ``"nobos"``, or a template with ``{word}``.
        memory_budget: bytes (or ``"512MB"``); captures above it stream to a memory-mapped file.
        trust_remote_code: let model repositories run their own code when loaded.
    """

    models: list[str | None] = field(default_factory=lambda: [None])
    sets: list[str] = field(default_factory=lambda: ["categories"])
    inline: dict[str, list[str]] = field(default_factory=dict)
    dims: int = 2
    basis: str = "layer"
    layers: str | list[int | str] = "all"
    context: str = "bos"
    leading_space: bool = False
    multi_token: str = "mean"
    batch_size: int = 64
    memory_budget: int | str | None = None
    trust_remote_code: bool = False


def check_basis(basis: str | int) -> str:
    """``layer``, ``embedding`` or an integer layer index; else a one-line error."""
    text = str(basis).strip()
    if text in BASIS_MODES:
        return text
    try:
        int(text)
    except ValueError:
        raise LayerscopeError(
            f"--basis {text!r} is not valid; give 'layer' (a PCA per layer), 'embedding' (layer 0's basis) "
            "or a layer index such as 6 or -1"
        ) from None
    return text


def check_config(config: LayersConfig) -> dict[str, list[str]]:
    """Validate everything that needs no model (so the CLI fails before loading one); returns the sets."""
    if config.dims not in (2, 3):
        raise LayerscopeError(f"--dims {config.dims} is not supported; valid: 2, 3")
    check_policy(config.multi_token)
    check_context(config.context)
    check_basis(config.basis)
    if not (isinstance(config.layers, str) and config.layers.strip() == "all"):
        try:
            parse_layers(config.layers, 1 << 30)  # syntax only; the range is checked per model
        except LayerscopeError as exc:  # the stand-in layer count is no valid range: name none
            raise LayerscopeError(str(exc).replace(f"integers {-(1 << 30) - 1}..{1 << 30}", "layer indices")) from None
    if not config.models:
        raise LayerscopeError("no model given")
    return gather_sets(config)


@dataclass
class LayersResult:
    """The outcome of a layers run.

    Attributes:
        projection: one row per (model, layer, word): ``layer, model, set, label, pc1..pcK``.
        metrics: one row per (model, layer): ``model, layer, silhouette, between_within, residual_norm, top2_variance``.
        ratios: one row per (model, layer): the share of the layer's variance along each axis, ``ratio1..ratioK``.
        arrays: model name -> captured float32 ``(layer, item, d_model)`` for the layers in ``projection``.
        titles: layer -> its display title.
    """

    projection: pd.DataFrame
    metrics: pd.DataFrame
    ratios: pd.DataFrame
    arrays: dict[str, np.ndarray]
    titles: dict[str, str]
    config: LayersConfig
    models: list[dict]
    timings: dict[str, float]

    @property
    def table(self) -> pd.DataFrame:
        """The projection table (as ``layerscope.tokens`` results call it)."""
        return self.projection

    def title(self) -> str:
        sets = ", ".join(dict.fromkeys(self.projection["set"]))
        basis = {"layer": "a PCA per layer", "embedding": "the embedding layer's PCA"}.get(
            self.config.basis, f"layer {self.config.basis}'s PCA"
        )
        return f"{sets} across layers ({basis}; context {self.config.context!r})"

    def figure(self):
        """The plotly figure with a layer slider, models side by side."""
        from ..render.layer_slider import layer_slider_figure

        return layer_slider_figure(
            self.projection, self.ratios, titles=self.titles, fixed_axes=self.config.basis != "layer", title=self.title()
        )

    def save(self, out: str | Path) -> Path:
        """Write projection.csv, metrics.csv, index.html, grid.png, layers/layer-*.png, metrics.png, run.json."""
        from ..render.layer_grid import grid_png, layer_png, metrics_png
        from ..render.scatter import write_html

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        for name, frame in (("projection.csv", self.projection), ("metrics.csv", self.metrics)):
            with atomic_path(out / name) as tmp:
                frame.to_csv(tmp, index=False)
        write_html(self.figure(), out / "index.html")
        grid_png(self.projection, self.titles, out / "grid.png", title=self.title())
        for layer in dict.fromkeys(self.projection["layer"]):
            stem = f"layer-{int(layer):02d}" if layer.isdigit() else f"layer-{layer}"
            layer_png(self.projection, self.ratios, layer, out / "layers" / f"{stem}.png", title=self.titles[layer])
        metrics_png(self.metrics, out / "metrics.png", title=f"{', '.join(dict.fromkeys(self.projection['set']))}")
        timings = {**self.timings, "write": time.perf_counter() - start}
        write_run_json(out, "layers", self.config, self.models, timings)
        return out


def _basis_index(basis: str, n_layers: int):
    if basis == "layer":
        return None
    if basis == "embedding":
        return 0
    return resolve_layer(int(basis), n_layers)


def _display_name(model: Model, taken: set[str]) -> str:
    name, k = model.name, 2
    while name in taken:
        name, k = f"{model.name} ({k})", k + 1
    return name


def run_layers(config: LayersConfig, models: list[Model] | None = None) -> LayersResult:
    """Run the layers experiment; loads each of ``config.models`` in turn unless loaded ``models`` are given."""
    sets = check_config(config)
    sources = models if models is not None else config.models
    projections, metrics, ratios, arrays, records = [], [], [], {}, []
    titles: dict[str, str] = {}
    timings: dict[str, float] = {"load": 0.0, "capture": 0.0, "analysis": 0.0}
    for source in sources:
        start = time.perf_counter()
        model = source if isinstance(source, Model) else load_model(source, trust_remote_code=config.trust_remote_code)
        timings["load"] += time.perf_counter() - start
        name = _display_name(model, set(arrays))
        layers = parse_layers(config.layers, model.n_layers)
        basis = _basis_index(config.basis, model.n_layers)
        captured = layers + ([basis] if basis is not None and basis not in layers else [])

        start = time.perf_counter()
        items = encode_sets(model.tokenizer, sets, leading_space=config.leading_space)
        prompts = word_prompts(model, items, config.context)
        array = capture_residuals(
            model, prompts, captured, pool=config.multi_token, batch_size=config.batch_size,
            memory_budget=config.memory_budget, description=f"Capturing {name}",
        )
        timings["capture"] += time.perf_counter() - start

        start = time.perf_counter()
        coords, shares = project_layers(array, config.dims, None if basis is None else captured.index(basis))
        names = [layer_name(i) for i in layers]
        titles.update({layer_name(i): layer_title(i) for i in layers})
        labels = [item.set for item in items]
        for slot, layer in enumerate(names):
            frame = pd.DataFrame({"layer": layer, "model": name, "set": labels, "label": [i.label for i in items]})
            for k in range(config.dims):
                frame[f"pc{k + 1}"] = coords[slot, :, k]
            projections.append(frame)
            ratios.append({"model": name, "layer": layer, **{f"ratio{k + 1}": shares[slot, k] for k in range(config.dims)}})
        table = layer_metrics(array[: len(layers)], labels, names)
        table.insert(0, "model", name)
        metrics.append(table)
        arrays[name] = array[: len(layers)]
        timings["analysis"] += time.perf_counter() - start
        records.append({**model_record(model), "display_name": name, "layers": names})
        del model
        gc.collect()
    return LayersResult(
        projection=pd.concat(projections, ignore_index=True),
        metrics=pd.concat(metrics, ignore_index=True),
        ratios=pd.DataFrame(ratios),
        arrays=arrays,
        titles=titles,
        config=config,
        models=records,
        timings=timings,
    )


def layers(
    sets: str | list[str] = "categories",
    *,
    model: str | Model | list[str | Model] | None = None,
    basis: str | int = "layer",
    dims: int = 2,
    layers: str | list[int | str] = "all",
    context: str = "bos",
    tokens: list[str] | str | None = None,
    leading_space: bool = False,
    multi_token: str = "mean",
    memory_budget: int | str | None = None,
    out: str | Path | None = None,
) -> LayersResult:
    """Word categories at every layer, projected with PCA, with per-layer separation numbers.

    Example:
        >>> result = layerscope.layers("categories", basis="embedding")
        >>> result.metrics[["layer", "silhouette", "residual_norm"]].head()
        >>> result.figure()               # layer slider, in Jupyter
        >>> result.save("runs/categories")
    """
    from ..tokensets import inline_set

    sets_list = [sets] if isinstance(sets, str) else list(sets)
    given = model if isinstance(model, list) else [model]
    loaded = [m for m in given if isinstance(m, Model)]
    if loaded and len(loaded) != len(given):
        raise LayerscopeError("give models either all as loaded Model objects or all as sources")
    inline = {}
    if tokens is not None:
        inline = inline_set(tokens) if isinstance(tokens, str) else {"tokens": list(tokens)}
    config = LayersConfig(
        models=[m.source for m in loaded] if loaded else given,
        sets=sets_list if tokens is None or sets != "categories" else [],
        inline=inline,
        dims=dims,
        basis=str(basis),
        layers=layers,
        context=context,
        leading_space=leading_space,
        multi_token=multi_token,
        memory_budget=memory_budget,
    )
    result = run_layers(config, loaded or None)
    if out is not None:
        result.save(out)
    return result


def default_out() -> Path:
    return default_run_dir("layers")
