"""An interactive plotly figure with a layer slider: one frame per layer, one panel per model.

Each (model, set) is one trace whose points change from frame to frame, so a click on a legend
entry hides that set in every model and every layer. With a fixed basis the axes keep one range
across layers; with a basis per layer each frame sets its own ranges and axis titles.

Models of different depths (a ``relative_depth`` column whose values differ between models, see
:func:`layerscope.analysis.layer_metrics.relative_depth`): the slider steps over the layers of the deepest
model, and at each step every model shows its layer nearest in relative depth
(:func:`~layerscope.analysis.layer_metrics.align_layers` with ``fill``); the step is labelled with each
model's layer in the panels' order (``block 5 · block 0``), and each panel's title names its model and the
layer it shows (``gemma3 · block 5``).

Example:
    >>> fig = layer_slider_figure(projection, ratios, titles={"embed": "embed", "0": "block 0"}, fixed_axes=True,
    ...                           title="gemma: categories")
    >>> fig.show()
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..analysis.layer_metrics import align_layers, relative_positions
from ..analysis.layer_projection import layer_order
from .palette import color_map

_AXES = ("x", "y", "z")


def _range(values: pd.Series) -> list[float]:
    low, high = float(values.min()), float(values.max())
    pad = 0.06 * (high - low) if high > low else 1.0
    return [low - pad, high + pad]


def _axis_key(axis: str, col: int, dims: int) -> str:
    """Layout key of axis ``x``/``y``/``z`` of panel ``col`` (1-based)."""
    suffix = "" if col == 1 else str(col)
    return f"scene{suffix}" if dims == 3 else f"{axis}axis{suffix}"


def _axes_layout(
    table: pd.DataFrame, ratios: pd.DataFrame, models: list[str], shown: dict[str, str] | None, dims: int
) -> dict:
    """Ranges and titles of every panel, for the layer each model shows (or for all layers when ``shown`` is None)."""
    layout: dict = {}
    for col, model in enumerate(models, start=1):
        layer = None if shown is None else shown[model]
        rows = table[table["model"] == model]
        if layer is not None:
            rows = rows[rows["layer"] == layer]
        ratio_rows = ratios[(ratios["model"] == model) & (ratios["layer"] == layer)] if layer else ratios.iloc[:0]
        axes = {}
        for k in range(dims):
            share = f" ({100 * ratio_rows[f'ratio{k + 1}'].iloc[0]:.1f}%)" if len(ratio_rows) else ""
            axes[_AXES[k]] = dict(
                range=_range(rows[f"pc{k + 1}"]) if len(rows) else None,
                title=dict(text=f"PC{k + 1}{share}"),
                autorange=False,
            )
        if dims == 3:
            layout[_axis_key("x", col, dims)] = {f"{a}axis": v for a, v in axes.items()}
        else:
            for axis, value in axes.items():
                layout[_axis_key(axis, col, dims)] = value
    return layout


def _frame_traces(table: pd.DataFrame, models: list[str], sets: list[str], shown: dict[str, str], dims: int) -> list:
    """The traces of one frame: each model at the layer ``shown[model]``."""
    traces = []
    colors = color_map(sets)
    for col, model in enumerate(models, start=1):
        at = table[(table["model"] == model) & (table["layer"] == shown[model])]
        for set_name in sets:
            group = at[at["set"] == set_name]
            common = dict(
                name=set_name,
                legendgroup=set_name,
                showlegend=col == 1,
                mode="markers+text",
                text=list(group["label"].astype(str)),
                hovertext=[f"{model} · {set_name}: {label}" for label in group["label"]],
                hoverinfo="text",
                textposition="top center",
                textfont=dict(size=9, color=colors[set_name]),
                marker=dict(color=colors[set_name], size=5 if dims == 3 else 8, line=dict(width=0.5, color="white")),
            )
            coords = {a: list(group[f"pc{k + 1}"]) for k, a in enumerate(_AXES[:dims])}
            if dims == 3:
                traces.append(go.Scatter3d(**coords, scene="scene" if col == 1 else f"scene{col}", **common))
            else:
                suffix = "" if col == 1 else str(col)
                traces.append(go.Scatter(**coords, xaxis=f"x{suffix}", yaxis=f"y{suffix}", **common))
    return traces


def layer_slider_figure(
    table: pd.DataFrame,
    ratios: pd.DataFrame,
    *,
    titles: dict[str, str],
    fixed_axes: bool,
    title: str,
) -> go.Figure:
    """Scatter of ``table`` (``model, layer, depth[, relative_depth], set, label, pc1..pcK``) with a layer slider.

    ``ratios`` (``model, layer, ratio1..ratioK``) labels the axes with each layer's variance share;
    ``titles`` maps a layer name to its slider label (``embed``, ``block 6``); frames are named by layer
    (by their step label when the models' depths differ: see the module); ``fixed_axes`` keeps one range
    per panel for all layers.
    """
    dims = sum(1 for c in table.columns if c.startswith("pc"))
    models = list(dict.fromkeys(table["model"]))
    sets = list(dict.fromkeys(table["set"]))
    positions = relative_positions(table)
    if positions is None:  # every model at the same layer
        steps = [({model: layer for model in models}, titles.get(layer, layer)) for layer in layer_order(table)]
    else:
        _, placed = align_layers(positions, fill=True)
        steps = []
        for row in range(len(placed[models[0]])):
            shown = {model: placed[model][row] for model in models}
            label = " · ".join(titles.get(shown[model], shown[model]) for model in models)  # panels' order
            steps.append((shown, label))
    specs = [[{"type": "scene"} if dims == 3 else {} for _ in models]]
    fig = make_subplots(rows=1, cols=len(models), subplot_titles=models, specs=specs, horizontal_spacing=0.06)
    panel_titles = list(fig.layout.annotations)
    frames = []
    for shown, label in steps:
        layout = {} if fixed_axes else _axes_layout(table, ratios, models, shown, dims)
        if positions is not None:  # each panel's title names the layer it shows
            layout["annotations"] = [
                {**a.to_plotly_json(), "text": f"{m} · {titles.get(shown[m], shown[m])}"}
                for a, m in zip(panel_titles, models)
            ]
        name = label if positions is not None else shown[models[0]]
        frames.append(go.Frame(name=name, data=_frame_traces(table, models, sets, shown, dims), layout=layout))
    fig.add_traces(frames[0].data)
    fig.frames = frames
    fig.update_layout(_axes_layout(table, ratios, models, None if fixed_axes else steps[0][0], dims))
    if positions is not None:
        fig.update_layout(annotations=frames[0].layout.annotations)
    if dims == 2:
        for col in range(1, len(models) + 1):
            suffix = "" if col == 1 else str(col)
            fig.layout[f"yaxis{suffix}"].update(zeroline=False)
            fig.layout[f"xaxis{suffix}"].update(zeroline=False)
    step_args = dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
    fig.update_layout(
        title=dict(text=title, x=0.5),
        template="plotly_white",
        legend=dict(title="set (click to hide)", itemsizing="constant"),
        margin=dict(l=10, r=10, t=80, b=110),
        height=720,
        width=None,
        sliders=[
            dict(  # beside the play/pause buttons, never under them
                active=0,
                currentvalue=dict(prefix="layer: ", xanchor="left"),
                x=0.16,
                len=0.84,
                xanchor="left",
                y=0,
                yanchor="top",
                pad=dict(t=50, b=10),
                steps=[
                    dict(label=label, method="animate", args=[[frame.name], step_args])
                    for (_, label), frame in zip(steps, frames)
                ],
            )
        ],
        updatemenus=[
            dict(
                type="buttons",
                direction="left",
                x=0,
                y=0,
                xanchor="left",
                yanchor="top",
                pad=dict(t=58, r=10),
                showactive=False,
                buttons=[
                    dict(
                        label="play",
                        method="animate",
                        args=[None, {**step_args, "frame": dict(duration=600, redraw=True), "fromcurrent": True}],
                    ),
                    dict(label="pause", method="animate", args=[[None], step_args]),
                ],
            )
        ],
    )
    return fig
