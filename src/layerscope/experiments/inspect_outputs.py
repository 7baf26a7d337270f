"""Writing an ``inspect`` run directory: data, figures, ``phases.json``, ``run.json``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, write_json
from ..rundir import write_run_json


def _csv(frame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def save_inspect(result, out: Path) -> Path:
    """Write ``residuals.npy``, ``heatmap.html/.png``, ``similarity.csv``, ``logit_lens.csv``,
    ``logit_lens.html/.png``, and with 3+ prompts ``phases.json`` + ``layers.html/.png``; with a second
    model ``compare.csv``; always ``run.json``."""
    from ..render.heatmap import lens_png, matrix_png, residual_png
    from ..render.scatter import write_html

    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with atomic_path(out / "residuals.npy") as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, result.residuals)
    _csv(result.similarity, out / "similarity.csv")
    _csv(result.lens, out / "logit_lens.csv")
    write_html(result.figure(), out / "heatmap.html")
    residual_png(result._panels(), result.layer_labels, result._zmax(), result.heatmap_title(), out / "heatmap.png")
    write_html(result.lens_figure(), out / "logit_lens.html")
    prob, top, prompts = result._lens_grid()
    lens_png(prob, top, prompts, result.layer_labels, f"{result.model_name}: logit lens", out / "logit_lens.png")
    phases_record = None
    if result.phases is not None:
        labels = result.layer_labels[:-1]
        phases_record = {
            "method": "contiguous kernel k-means on the linear CKA matrix over the prompts, k by mean silhouette",
            "silhouette": result.phases.silhouette,
            "phases": [{"first": labels[a], "last": labels[b]} for a, b in result.phases.bounds],
            "summary": result.phases.describe(labels),
            "contrast": result.phases.contrast,
            "consecutive_cka": dict(zip([f"{labels[i]}->{labels[i + 1]}" for i in range(len(labels) - 1)], result.phases.consecutive)),
        }
        write_json(out / "phases.json", phases_record)
        write_html(result.phases_figure(), out / "layers.html")
        matrix_png(result.matrices, labels, f"{result.model_name}: layer-by-layer similarity", result.phases.boundaries, out / "layers.png")
    if result.comparison is not None:
        _csv(result.comparison, out / "compare.csv")
    timings = {**result.timings, "write": time.perf_counter() - start}
    write_run_json(
        out, "inspect", result.config, result.models, timings,
        prompts=[{"prompt": t.prompt, "ids": t.ids, "position": t.position, "target": t.target_text, "target_id": t.target_id} for t in result.tokens],
        layers=result.layer_labels,
        phases=phases_record["summary"] if phases_record else None,
    )
    return out
