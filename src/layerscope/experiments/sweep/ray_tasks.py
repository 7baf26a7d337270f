"""The Ray side of a sweep: each model one Ray task, its run directory sent back to the driver as bytes.

A task gets plain data only (the experiment's name and its config as ``run.json`` records it), runs the
experiment into a temporary directory on whichever machine Ray picked, and returns the files of that run
directory (``{relative name: bytes}``) or a one-line reason; the driver writes them under its own ``--out``
through :meth:`~layerscope.rundir.RunDir.write_files`. Nothing is left on the worker's disk.

Ray is optional (``pip install 'layerscope[ray]'``): :func:`ray_available` says whether it is installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import LayerscopeError

#: a local Ray instance's object store: run directories pass through it one at a time
LOCAL_OBJECT_STORE = 256 << 20


def ray_available() -> bool:
    """Whether Ray is installed (``pip install 'layerscope[ray]'``)."""
    return importlib.util.find_spec("ray") is not None


@dataclass
class RayTask:
    """One model's task: what it runs and what it asks Ray for."""

    key: str
    experiment: str
    record: dict
    memory: int
    gpus: int = 0
    options: dict = field(default_factory=dict)


def local_ray_options(num_cpus: int | None = None) -> dict:
    """``ray.init`` options for a local instance on this machine: ``num_cpus`` (default: every core), no
    dashboard, a small object store, and workers that import the same layerscope as this process."""
    import layerscope

    package_root = str(Path(layerscope.__file__).resolve().parents[1])
    paths = [package_root, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    return {
        "address": "local",
        "num_cpus": num_cpus or os.cpu_count() or 1,
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.ERROR,
        "object_store_memory": LOCAL_OBJECT_STORE,
        "runtime_env": {"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}},
    }


def start_local_ray(num_cpus: int | None = None):
    """Start a local Ray instance (see :func:`local_ray_options`); returns the ``ray`` module."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(**local_ray_options(num_cpus))
    return ray


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None) -> Iterator[object]:
    """The ``ray`` module, connected: to Ray already initialized in this process (left running), to the
    cluster at ``address``, or to a new local instance (both shut down afterwards)."""
    import ray

    if ray.is_initialized():
        yield ray
        return
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        else:
            start_local_ray(num_cpus)
    except Exception as exc:  # a wrong address, a cluster that is down, a port in use
        where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LayerscopeError(f"cannot start or reach {where}: {first[:300]}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def largest_node_memory(ray) -> int | None:
    """The most ``memory`` one alive Ray node offers (a request above it could never be scheduled)."""
    sizes = [int(n.get("Resources", {}).get("memory", 0)) for n in ray.nodes() if n.get("Alive")]
    return max(sizes) if sizes else None


def cluster_gpus(ray) -> float:
    return float(ray.cluster_resources().get("GPU", 0))


def run_tasks(ray, tasks: Sequence[RayTask]) -> Iterator[tuple[RayTask, dict]]:
    """Submit every task and yield ``(task, payload)`` as each one ends, in the order they end.

    A payload is what :func:`run_model_task` returned, or ``{"status": "failed", "reason": ...}`` when Ray
    itself lost the task (a worker killed for memory, a node gone).
    """
    remote = ray.remote(run_model_task)
    pending = {}
    for task in tasks:
        options = {"num_cpus": 1, "memory": max(int(task.memory), 1), "max_retries": 0, **task.options}
        if task.gpus:
            options["num_gpus"] = task.gpus
        ref = remote.options(name=f"layerscope {task.experiment} {task.key}", **options).remote(
            task.experiment, task.record
        )
        pending[ref] = task
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        task = pending.pop(done[0])
        try:
            payload = ray.get(done[0])
        except Exception as exc:  # the task did not come back: ray.exceptions.RayError and its kin
            payload = {"status": "failed", "reason": f"the Ray task failed: {one_line(exc)}"}
        yield task, payload


def one_line(exc: BaseException) -> str:
    """An exception as one line: a layerscope error's own message, else ``Type: first line``."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if isinstance(exc, LayerscopeError):
        return first[:500]
    return f"{type(exc).__name__}: {first}"[:500] if first else type(exc).__name__


def run_model_task(experiment: str, record: dict) -> dict:
    """Run one model's experiment (the config rebuilt from its ``run.json`` record) into a temporary run
    directory and return its files: ``{"status": "ok", "files": {name: bytes}, "workdir": path, "seconds": s}``,
    or ``{"status": "failed", "reason": one line}``. This is the function a Ray worker runs."""
    from ... import progress
    from ...rundir import UNFINISHED
    from .config import config_of

    progress.set_enabled(False)
    start, where = time.perf_counter(), {"host": socket.gethostname(), "started": time.time()}
    try:
        with tempfile.TemporaryDirectory(prefix="layerscope-sweep-") as tmp:
            out = Path(tmp) / "run"
            config = config_of(experiment, record, resume_dir=str(out))
            from ...runner import execute

            execute(config, out=out)
            files = {
                str(path.relative_to(out)): path.read_bytes()
                for path in sorted(out.rglob("*"))
                if path.is_file() and not path.is_symlink() and path.name != UNFINISHED
            }
    except Exception as exc:
        return {"status": "failed", "reason": one_line(exc), "seconds": time.perf_counter() - start, **where}
    return {"status": "ok", "files": files, "workdir": str(out), "seconds": time.perf_counter() - start, **where}
