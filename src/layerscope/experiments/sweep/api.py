"""``layerscope.sweep(...)``: one experiment over many models from Python."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

from ...errors import LayerscopeError
from ...experiment import ExperimentConfig
from ...model_spec import ModelSpec, model_list
from ...rundir import default_run_dir
from ...runner import execute
from .config import SweepConfig, config_class
from .result import SweepResult


def sweep(
    experiment: ExperimentConfig | str,
    models: Sequence[ModelSpec | str | None] | ModelSpec | str | None = None,
    *,
    model: Sequence[ModelSpec | str | None] | ModelSpec | str | None = None,
    out: str | os.PathLike | None = None,
    ray_address: str | None = None,
    use_ray: bool = True,
    num_cpus: int | None = None,
    memory_per_model: int | str | None = None,
    force: bool = False,
    **options,
) -> SweepResult:
    """Run one experiment over many models: a run directory per model under ``out``, one merged table and figure.

    Args:
        experiment: an experiment's config (its model is replaced by each of ``models``) or its name
            (``"echo"``, ``"layers"``, ``"ablate"``, ...; ``options`` are then its config's fields).
        models: sources, :class:`~layerscope.ModelSpec` or None (the default model); ``model=`` is the same
            parameter.
        out: the sweep's directory (default ``runs/sweep-<time>``); each model's run is ``out/<model name>/``.
        ray_address: an existing Ray cluster; None starts a local Ray instance (when Ray is installed).
        use_ray: False runs the models one after another in this process.
        num_cpus: CPUs of the local Ray instance (default: every core).
        memory_per_model: what each model's task asks Ray for, instead of the estimate from its headers.
        force: empty ``out`` first (every model runs again).

    Models that fail are rows of ``result.status`` (and warned about); the others finish.

    Example:
        >>> result = layerscope.sweep("layers", models=["default", "path/to/qwen3"], out="runs/layers-sweep")
        >>> result.merged["metrics"]      # per-layer metrics of every model, with relative_depth
    """
    if isinstance(experiment, str):
        base = config_class(experiment)(**options)
    elif options:
        raise LayerscopeError(f"options {sorted(options)} apply only when the experiment is given by name")
    else:
        base = experiment
    config = SweepConfig(
        base=base,
        models=tuple(ModelSpec.of(m) for m in model_list(models, model)),
        ray_address=ray_address,
        use_ray=use_ray,
        num_cpus=num_cpus,
        memory_per_model=memory_per_model,
    )
    result = execute(config, out=out if out is not None else default_run_dir("sweep"), force=force)
    for name, reason in result.failures.items():
        warnings.warn(f"model {name!r} failed: {reason}", stacklevel=2)
    return result
