"""``layerscope.residuals``: residual-stream vectors of prompts or words at every layer, as numpy.

Flow: prompts (text, last/all/explicit positions) or token sets (words in a context) -> the capture
engine -> ``(layer, item, d_model)`` float32 + one table row per item.

Layers are named as everywhere (:mod:`layerscope.capture.layer_spec`): ``embed`` (the embedding output),
``0``..``n-1`` (the output of decoder block ``k``, before the final norm), ``norm`` (the final norm's output).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis import residual_norm
from ..capture import capture_residuals, parse_layers, prompts_at
from ..capture.contexts import word_prompts
from ..capture.layer_spec import layer_depth, layer_name
from ..experiment import Result
from ..model_spec import ModelSpec
from ..models import Model
from ..models.loading import given_or_loaded
from ..render.lines import layer_lines
from ..rundir import model_record
from ..runner import execute
from ..tokensets import encode_sets
from ..tokensets.options import inline_words
from .capture_config import POSITIONS, CaptureConfig  # noqa: F401  (declared in a light module)
from .findings import layer_phrase


@dataclass(kw_only=True, repr=False)
class CaptureResult(Result):
    """Captured vectors and what they are.

    Attributes:
        residuals: float32 ``(layer, item, d_model)`` (a ``np.memmap`` when it went to disk).
        layers: the layer names in ``residuals`` order (``embed``, ``0``..``n-1``, ``norm``).
        depths: their depths (0 = embed, ``k + 1`` = block ``k``, ``n_layers + 1`` = norm).
        table: one row per item: ``item`` plus ``prompt, text, positions, tokens`` or
            ``set, label, text, token_ids, positions``.
    """

    config: CaptureConfig
    residuals: np.ndarray
    layers: list[str]
    depths: list[int]
    table: pd.DataFrame

    @property
    def model_name(self) -> str:
        return self.model_names[0] if self.models else "?"

    def norms(self) -> pd.DataFrame:
        """Mean residual norm per layer: ``model, layer, depth, residual_norm``."""
        return pd.DataFrame(
            {
                "model": self.model_name,
                "layer": self.layers,
                "depth": self.depths,
                "residual_norm": [residual_norm(self.residuals[i]) for i in range(len(self.layers))],
            }
        )

    def norm_lines(self):
        """The mean residual norm against layer, on a log axis (norms grow by orders of magnitude), as one
        :class:`~layerscope.render.line_figure.LineFigure`."""
        title = f"{self.model_name}: {len(self.table)} items"
        return layer_lines(self.norms(), {"residual_norm": "mean residual norm"}, title=title, log={"residual_norm"})

    def figure(self):
        """The mean residual norm against layer (plotly, log axis)."""
        return self.norm_lines().plotly()

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"items": self.table, "norms": self.norms()}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"residuals": self.residuals}

    def figures(self) -> dict:
        return {"index": self.figure}

    def images(self) -> dict:
        return {"index": lambda: self.norm_lines().png()}

    def record(self) -> dict:
        return {"layers": self.layers, "shape": list(self.residuals.shape), "findings": self.findings()}

    def findings(self) -> dict[str, str]:
        """``{"index": sentence}``: the layer with the largest mean residual norm, against the first."""
        norms = self.norms()
        if len(norms) < 2 or not norms["residual_norm"].notna().any():
            return {}
        peak = norms.loc[norms["residual_norm"].idxmax()]
        first = norms.iloc[0]
        return {
            "index": f"the mean residual norm peaks at {layer_phrase(peak['layer'])} ({peak['residual_norm']:.3g}), "
            f"from {first['residual_norm']:.3g} at {layer_phrase(first['layer'])}"
        }

    def main_table(self) -> pd.DataFrame:
        return self.norms()

    @classmethod
    def from_files(cls, config, tables, arrays, record, run_dir) -> CaptureResult:
        """A saved capture run (see :func:`layerscope.load_run`): ``residuals`` memory-mapped."""
        norms = tables["norms"]
        return cls(
            config=config,
            residuals=arrays["residuals"],
            layers=[str(layer) for layer in norms["layer"]],
            depths=[int(depth) for depth in norms["depth"]],
            table=tables["items"],
            **cls.saved(record),
        )

    def summary(self) -> list[str]:
        shape = " x ".join(map(str, self.residuals.shape))
        return [f"residuals (layer, item, d_model): {shape}; layers {', '.join(self.layers)}"]


def _word_rows(model, config: CaptureConfig):

    items = encode_sets(model.tokenizer, config.word_sets(), leading_space=config.leading_space)
    prompts = word_prompts(model, items, config.context)
    rows = [
        {
            "set": item.set,
            "label": item.label,
            "text": item.text,
            "token_ids": " ".join(map(str, item.token_ids)),
            "positions": " ".join(map(str, prompt.groups[0])),
        }
        for item, prompt in zip(items, prompts)
    ]
    return prompts, rows


def _prompt_rows(model, config: CaptureConfig):

    ids = [model.encode(text, bos=config.bos) for text in config.prompts]
    positions = config.positions if isinstance(config.positions, str) else [list(g) for g in config.positions]
    prompts = prompts_at(ids, positions)
    rows = [
        {
            "prompt": p,
            "text": config.prompts[p],
            "positions": " ".join(map(str, g)),
            "tokens": "".join(model.token_strings([prompt.ids[i] for i in g])),
        }
        for p, prompt in enumerate(prompts)
        for g in prompt.groups
    ]
    return prompts, rows


def run_capture(config: CaptureConfig, model=None) -> CaptureResult:
    """Run :class:`CaptureConfig` on ``model`` (loaded from ``config.model`` when None); no files written."""
    timings: dict[str, float] = {}
    model = given_or_loaded(config.model, model, timings)
    layers = parse_layers(config.layers, model.n_layers)
    prompts, rows = _prompt_rows(model, config) if config.prompts else _word_rows(model, config)
    start = time.perf_counter()
    captured = capture_residuals(
        model,
        prompts,
        layers,
        pool=config.multi_token,
        batch_size=config.batch_size,
        memory_budget=config.memory_budget,
        description=f"Capturing {model.name}",
    )
    timings["capture"] = time.perf_counter() - start
    table = pd.DataFrame(rows)
    table.insert(0, "item", range(len(table)))
    return CaptureResult(
        config=config,
        residuals=captured,
        layers=[layer_name(d) for d in layers],
        depths=[layer_depth(d, model.n_layers) for d in layers],
        table=table,
        models=[model_record(model)],
        timings=timings,
    )


def residuals(
    prompts: str | Sequence[str] | None = None,
    *,
    sets: str | Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    tokens: Sequence[str] | str | None = None,
    model=None,
    layers: str | int | Sequence[int | str] = "all",
    positions: str | Sequence[Sequence[int]] = "last",
    context: str = "bos",
    multi_token: str = "mean",
    leading_space: bool = False,
    bos: bool = True,
    batch_size: int = 32,
    memory_budget: int | str | None = None,
    out: str | Path | None = None,
) -> CaptureResult:
    """Residual-stream vectors ``(layer, item, d_model)`` of prompts at chosen positions, or of words in a context.

    Args:
        prompts: texts, each read at ``positions`` (``"last"``, ``"all"``, or one list of positions per
            prompt, pooled with ``multi_token``).
        sets: instead of prompts, words: set names or files, or ``{name: [words]}``; ``tokens`` adds words inline.
        model: a loaded model, a source, a :class:`ModelSpec`, or None for the default model.
        layers: ``"all"`` or names such as ``"embed,0,6,-1"`` (``"norm"``: after the final norm).
        out: also write the run directory there (``residuals.npy``, ``items.csv``, ``norms.csv``, ...).

    Example:
        >>> result = layerscope.residuals(["The capital of France is"], layers="embed,6,-1")
        >>> result.residuals.shape          # the last position of the prompt
        (3, 1, 640)
        >>> words = layerscope.residuals(sets="months", context="The word is {word}")
        >>> words.table[["set", "label", "positions"]].head()
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    if isinstance(layers, (list, tuple)):
        layers = ",".join(map(str, layers))
    names: tuple[str, ...] = ()
    inline: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if isinstance(sets, Mapping):
        inline = tuple((str(k), tuple(str(w) for w in v)) for k, v in sets.items())
    elif sets is not None:
        names = (sets,) if isinstance(sets, str) else tuple(sets)
    config = CaptureConfig(
        model=ModelSpec.of(model),
        prompts=tuple(prompts) if prompts is not None else (),
        sets=names,
        tokens=inline_words(tokens),
        inline=inline,
        layers=str(layers),
        positions=positions if isinstance(positions, str) else tuple(tuple(int(p) for p in g) for g in positions),
        context=context,
        multi_token=multi_token,
        leading_space=leading_space,
        bos=bos,
        batch_size=batch_size,
        memory_budget=memory_budget,
    )
    return execute(config, model if isinstance(model, Model) else None, out=out)
