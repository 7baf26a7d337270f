"""One experiment over many models: each model's own run directory, then one merged table, figure and page.

Flow: the experiment's config and the models -> one config per model (``dataclasses.replace`` of its
``model``/``models`` field) -> a run directory per model, ``<out>/<model name>/``, each written by
:func:`~layerscope.runner.execute` as if run alone -> the tables of every finished model read back and
merged, with a ``sweep`` status table (``ok`` / ``failed`` with a one-line reason / ``skipped``: finished
before) and a figure across models: seed 004's echo table and rates, seed 002's per-layer metrics on
relative depth, ablation curves on the removed block's relative depth.

Where the models run: on Ray (``pip install 'layerscope[ray]'``) each model is one task asking for the
memory its forward pass needs (:func:`model_memory`) and a GPU when it is placed with a ``device_map`` on
a cluster that has GPUs, so models run side by side only when they fit; without an address a local Ray
instance is started on this machine. Without Ray (or ``use_ray=False``) the models run one after another in
this process, with the same outputs. A model whose run directory holds a finished run of the same config is
not run again: an interrupted sweep resumes.

Example:
    >>> result = layerscope.sweep("echo", models=["default", "path/to/qwen3"], out="runs/echo-sweep")
    >>> result.status                 # model, status, reason, ...
    >>> result.merged["echo"]         # seed 004's table, every model

Modules, one concept each:
    config      SweepConfig, and the swept experiment's config for one model
    memory      what a model's task asks for (bytes from the checkpoint's headers, a GPU)
    plan        a Job per model (unique name, run directory, request); which runs are finished
    run         running the jobs, on Ray or here, and reading them back; resuming
    ray_tasks   the Ray side: a model as one task, its run directory returned as bytes
    merge       the tables of every model as one, seed 004's echo table across models
    result      SweepResult, its figures, the line naming failed models
    api         ``layerscope.sweep(...)``
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...lazy import lazy_names

#: public name -> submodule, imported on first use: ``sweep.config`` (what the command line reads) stays light
_LAZY = {
    "sweep": "api",
    "SweepConfig": "config",
    "config_class": "config",
    "config_of": "config",
    "model_field": "config",
    "per_model": "config",
    "without_models": "config",
    "RUNTIME_OVERHEAD": "memory",
    "model_memory": "memory",
    "needs_gpu": "memory",
    "merge_tables": "merge",
    "merged_echo": "merge",
    "Job": "plan",
    "directory_for": "plan",
    "finished": "plan",
    "planned_name": "plan",
    "SweepResult": "result",
    "failure_line": "result",
    "run_sweep": "run",
}

__all__ = [
    "RUNTIME_OVERHEAD",
    "Job",
    "SweepConfig",
    "SweepResult",
    "config_class",
    "config_of",
    "directory_for",
    "failure_line",
    "finished",
    "merge_tables",
    "merged_echo",
    "model_field",
    "model_memory",
    "needs_gpu",
    "per_model",
    "planned_name",
    "run_sweep",
    "sweep",
    "without_models",
]


__getattr__, __dir__ = lazy_names(__name__, _LAZY)


if TYPE_CHECKING:  # pragma: no cover
    from .api import sweep
    from .config import SweepConfig, config_class, config_of, model_field, per_model, without_models
    from .memory import RUNTIME_OVERHEAD, model_memory, needs_gpu
    from .merge import merge_tables, merged_echo
    from .plan import Job, directory_for, finished, planned_name
    from .result import SweepResult, failure_line
    from .run import run_sweep
