"""``layerscope.capture``: residual-stream vectors of prompts or words at every layer, as numpy.

Flow: prompts (text, last/all/explicit positions) or token sets (words in a context) -> the capture
engine -> ``(layer, item, d_model)`` float32 + one table row per item.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..analysis import residual_norm
from ..atomic import atomic_path
from ..capture import capture_residuals, layer_name, parse_layers, prompts_at
from ..capture.contexts import check_context, word_prompts
from ..errors import LayerscopeError
from ..models import Model, model_for_run
from ..rundir import default_run_dir, write_run_json
from ..tokensets import check_policy, encode_sets, merge_sets, resolve_set


@dataclass
class CaptureConfig:
    """What :func:`capture` runs (every field is recorded in ``run.json``).

    Attributes:
        prompts: texts to run (each read at ``positions``); or None when ``sets`` are given.
        sets: token sets (built-in names or files) whose words are run in ``context``.
        layers: ``"all"`` or indices (``"0,1,6,-1"``; ``"norm"`` for the final norm's output).
        positions: for prompts: ``"last"``, ``"all"`` or one list of positions per prompt (pooled).
        context: for words: ``"bos"``, ``"nobos"`` or a template with ``{word}``.
        multi_token: pooling of several positions: ``mean``, ``first``, ``last``.
        bos: put BOS before each prompt.
    """

    prompts: list[str] | None = None
    sets: list[str] | dict[str, list[str]] | None = None
    layers: str | list[int | str] = "all"
    positions: str | list[list[int]] = "last"
    context: str = "bos"
    multi_token: str = "mean"
    leading_space: bool = False
    bos: bool = True
    batch_size: int = 32
    memory_budget: int | str | None = None
    model: str | None = None


@dataclass
class CaptureResult:
    """Captured vectors and what they are.

    Attributes:
        residuals: float32 ``(layer, item, d_model)`` (a ``np.memmap`` when it went to disk).
        layers: the layer names in ``residuals`` order (``"0"`` embedding output ... ``"18"``, ``"norm"``).
        table: one row per item: ``item`` plus ``prompt, text, positions, tokens`` or ``set, label, ...``.
    """

    residuals: np.ndarray
    layers: list[str]
    table: pd.DataFrame
    config: CaptureConfig
    model_name: str
    timings: dict[str, float]
    _model: Model | None = field(default=None, repr=False)

    def norms(self) -> pd.DataFrame:
        """Mean residual norm per layer: ``model, layer, residual_norm``."""
        return pd.DataFrame(
            {
                "model": self.model_name,
                "layer": self.layers,
                "residual_norm": [residual_norm(self.residuals[i]) for i in range(len(self.layers))],
            }
        )

    def figure(self):
        """The mean residual norm against layer (plotly)."""
        from ..render.lines import layer_lines_figure

        return layer_lines_figure(
            self.norms(), {"residual_norm": "mean residual norm"}, title=f"{self.model_name}: {len(self.table)} items"
        )

    def save(self, out: str | Path) -> Path:
        """Write ``residuals.npy``, ``items.csv``, ``norms.csv``, ``index.html`` and ``run.json``."""
        from ..render.scatter import write_html

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with atomic_path(out / "residuals.npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, self.residuals)
        for name, frame in (("items.csv", self.table), ("norms.csv", self.norms())):
            with atomic_path(out / name) as tmp:
                frame.to_csv(tmp, index=False)
        write_html(self.figure(), out / "index.html")
        timings = {**self.timings, "write": time.perf_counter() - start}
        models = [self._model] if self._model is not None else []
        write_run_json(out, "capture", self.config, models, timings, layers=self.layers, shape=list(self.residuals.shape))
        return out


def _sets(sets) -> dict[str, list[str]]:
    if isinstance(sets, dict):
        return merge_sets([{str(k): [str(w) for w in v]} for k, v in sets.items()])
    names = [sets] if isinstance(sets, str) else list(sets)
    return merge_sets(resolve_set(name) for name in names)


def run_capture(config: CaptureConfig, model: Model | None = None) -> CaptureResult:
    """Run :class:`CaptureConfig` on ``model`` (loads ``config.model`` when None)."""
    check_policy(config.multi_token)
    if (config.prompts is None) == (config.sets is None):
        raise LayerscopeError("give either prompts or sets (words) to capture, not both nor neither")
    check_context(config.context)
    timings: dict[str, float] = {}
    model = model_for_run(model, config.model, timings)
    layers = parse_layers(config.layers, model.n_layers)
    if config.prompts is not None:
        ids = [model.encode(text, bos=config.bos) for text in config.prompts]
        prompts = prompts_at(ids, config.positions)
        rows = [
            {"prompt": p, "text": config.prompts[p], "positions": " ".join(map(str, g)),
             "tokens": "".join(model.token_strings([prompt.ids[i] for i in g]))}
            for p, prompt in enumerate(prompts) for g in prompt.groups
        ]
    else:
        items = encode_sets(model.tokenizer, _sets(config.sets), leading_space=config.leading_space)
        prompts = word_prompts(model, items, config.context)
        rows = [
            {"set": item.set, "label": item.label, "text": item.text,
             "token_ids": " ".join(map(str, item.token_ids)), "positions": " ".join(map(str, prompt.groups[0]))}
            for item, prompt in zip(items, prompts)
        ]
    start = time.perf_counter()
    residuals = capture_residuals(
        model, prompts, layers, pool=config.multi_token, batch_size=config.batch_size,
        memory_budget=config.memory_budget, description=f"Capturing {model.name}",
    )
    timings["capture"] = time.perf_counter() - start
    table = pd.DataFrame(rows)
    table.insert(0, "item", range(len(table)))
    return CaptureResult(
        residuals=residuals, layers=[layer_name(i) for i in layers], table=table, config=config,
        model_name=model.name, timings=timings, _model=model,
    )


def capture(
    prompts: str | Sequence[str] | None = None,
    *,
    sets: str | list[str] | dict[str, list[str]] | None = None,
    model: str | Model | None = None,
    layers: str | list[int | str] = "all",
    positions: str | list[list[int]] = "last",
    context: str = "bos",
    multi_token: str = "mean",
    leading_space: bool = False,
    bos: bool = True,
    batch_size: int = 32,
    memory_budget: int | str | None = None,
    out: str | Path | None = None,
) -> CaptureResult:
    """Residual-stream vectors ``(layer, item, d_model)`` of prompts at chosen positions, or of words in a context.

    Example:
        >>> result = layerscope.capture(["The capital of France is"], layers="0,6,-1")
        >>> result.residuals.shape          # the last position of the prompt
        (3, 1, 640)
        >>> words = layerscope.capture(sets="months", context="The word is {word}")
        >>> words.table[["set", "label", "positions"]].head()
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    loaded = model if isinstance(model, Model) else None
    config = CaptureConfig(
        prompts=list(prompts) if prompts is not None else None,
        sets=sets if sets is None or isinstance(sets, (str, dict)) else list(sets),
        layers=layers, positions=positions, context=context, multi_token=multi_token,
        leading_space=leading_space, bos=bos, batch_size=batch_size, memory_budget=memory_budget,
        model=loaded.source if loaded else model,
    )
    result = run_capture(config, loaded)
    if out is not None:
        result.save(out)
    return result


def default_out() -> Path:
    return default_run_dir("capture")
