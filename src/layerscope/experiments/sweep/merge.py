"""The tables of every finished model as one: each table stem stacked over the models (a ``model`` column
first), ablate's removed block on relative depth, and seed 004's echo table across models.

Example:
    >>> merged = merge_tables("echo", {"gemma": gemma_result, "qwen3": qwen_result})
    >>> merged["echo"]                # rows of both models, a `model` column
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pandas as pd

from ...experiment import Result

if TYPE_CHECKING:  # pragma: no cover
    from .result import SweepResult


def merge_tables(experiment: str, results: dict[str, Result]) -> dict[str, pd.DataFrame]:
    """Each table stem over every model's result, a ``model`` column first where the table has none (or where
    two runs share a name); for ``ablate``, the removed block's ``relative_depth`` beside its accuracy."""
    stems: dict[str, list[pd.DataFrame]] = {}
    for name, result in results.items():
        for stem, frame in result.tables().items():
            frame = frame.copy()
            if "model" not in frame.columns:
                frame.insert(0, "model", name)
            if experiment == "ablate" and stem == "accuracy":
                n_blocks = next((m.get("n_layers") for m in result.models if m.get("n_layers")), None)
                column = (
                    frame.columns.get_loc("removed_layers") + 1 if "removed_layers" in frame else len(frame.columns)
                )
                frame.insert(
                    column, "relative_depth", [_removed_depth(v, n_blocks) for v in frame.get("removed_layers", [])]
                )
            stems.setdefault(stem, []).append(frame)
    merged = {}
    for stem, frames in stems.items():
        table = pd.concat(frames, ignore_index=True, sort=False)
        merged[stem] = table
    return merged


def _removed_depth(value, n_blocks) -> float:
    """The relative depth of one removed block ``k`` (its output, ``(k + 1) / n_blocks``, as in ``layers``);
    NaN for the baseline and for several blocks removed together."""
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value).strip()
    if not n_blocks or not text or "," in text:
        return float("nan")
    try:
        return (int(float(text)) + 1) / int(n_blocks)
    except ValueError:
        return float("nan")


def merged_echo(result: SweepResult):
    """The echo result of every finished model as one (seed 004's table across models)."""
    from ..echo import EchoResult

    base = result.config.base
    specs = tuple(r.config.models[0] for r in result.results.values())
    return EchoResult(
        config=dataclasses.replace(base, models=specs or base.models),
        table=result.merged.get("echo", pd.DataFrame()),
        completions=result.merged.get("completions", pd.DataFrame()),
        models=[m for r in result.results.values() for m in r.models],
    )
