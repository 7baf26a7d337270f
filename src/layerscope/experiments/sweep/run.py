"""Running a sweep: every model not finished before runs (as a Ray task, or here one after another), its run
directory written under the sweep's; then every finished model's tables are read back and merged.

A model whose run directory holds a finished run of the same config is not run again (an interrupted sweep
resumes); a model that fails is a ``failed`` row with a one-line reason, and the others finish.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from ... import progress
from ...errors import LayerscopeError
from ...experiment import Result
from ...load_run import load_run
from ...rundir import RunDir
from ...runner import execute
from .config import SweepConfig
from .memory import needs_gpu
from .merge import merge_tables
from .plan import Job, finished, plan
from .result import SweepResult


def _one_line(exc: BaseException) -> str:
    from .ray_tasks import one_line

    return one_line(exc)


def _row(job: Job, status: str, reason: str = "", seconds: float = 0.0, started=None, host: str = "") -> dict:
    import datetime as dt

    when = (
        ""
        if started is None
        else dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(timespec="milliseconds")
    )
    return {
        "model": job.name,
        "source": job.spec.label,
        "status": status,
        "reason": reason,
        "run_dir": job.run_dir.name,
        "seconds": round(float(seconds), 3),
        "started": when,
        "host": host,
        "memory_request": int(job.memory),
        "gpus": int(job.gpus),
    }


def _say(line: str) -> None:
    if progress.enabled():
        progress.console().print(line)


def run_sweep(config: SweepConfig) -> SweepResult:
    """Run ``config.base`` on every model of ``config.models`` into ``config.resume_dir`` (see the module)."""
    if config.resume_dir is None:
        raise config.error("resume_dir", None, "is not set; a sweep writes its models' runs under out=DIR")
    out = Path(config.resume_dir).expanduser()
    jobs = plan(config, out)
    rows: dict[str, dict] = {}
    results: dict[str, Result] = {}
    todo = []
    for job in jobs:
        earlier = _finished_result(job)
        if earlier is not None:
            rows[job.name] = _row(job, "skipped", "finished in an earlier run")
            results[job.name] = earlier
        elif job.run_dir.is_symlink() or (job.run_dir.exists() and not job.run_dir.is_dir()):
            reason = f"its folder {str(job.run_dir)!r} is a link or a file; a sweep writes only into folders of its own"
            rows[job.name] = _row(job, "failed", reason + " (--force replaces it)")
        else:
            todo.append(job)
    timings = {"models": 0.0}
    start = time.perf_counter()
    backend = "sequential"
    if todo:
        from .ray_tasks import ray_available

        if not config.use_ray:
            backend = "sequential (--no-ray)"
        elif not ray_available():
            backend = "sequential (Ray is not installed)"
        if config.use_ray and ray_available():
            backend = _run_on_ray(config, todo, rows)
        else:
            _run_here(todo, rows)
    timings["models"] = time.perf_counter() - start
    start = time.perf_counter()
    _read_back(todo, rows, results)
    status = pd.DataFrame([rows[job.name] for job in jobs])
    results = {job.name: results[job.name] for job in jobs if job.name in results}
    merged = merge_tables(config.base.experiment, results)
    timings["merge"] = time.perf_counter() - start
    return SweepResult(
        config=config,
        status=status,
        merged=merged,
        backend=backend,
        results=results,
        models=[m for r in results.values() for m in r.models],
        timings=timings,
    )


def _finished_result(job: Job) -> Result | None:
    """The result of a run of ``job`` finished before, read back from its directory; None when there is none,
    or when what is there cannot be read back (an empty or damaged table: the model runs again)."""
    if not finished(job.run_dir, job.config):
        return None
    try:
        return load_run(job.run_dir)
    except Exception:  # whatever the damage, the model's run is done again and replaces it
        return None


def _run_here(jobs: list[Job], rows: dict[str, dict]) -> None:
    """The models one after another in this process."""
    import socket

    host = socket.gethostname()
    for job in jobs:
        start, started = time.perf_counter(), time.time()
        try:
            execute(job.config, out=job.run_dir)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # one model's failure is its row; the others run
            rows[job.name] = _row(job, "failed", _one_line(exc), time.perf_counter() - start, started, host)
            _say(f"{job.name}: failed: {rows[job.name]['reason']}")
            continue
        rows[job.name] = _row(job, "ok", "", time.perf_counter() - start, started, host)
        _say(f"{job.name}: done ({rows[job.name]['seconds']:.1f} s)")


def _run_on_ray(config: SweepConfig, jobs: list[Job], rows: dict[str, dict]) -> str:
    """Every model one Ray task (memory and GPU requests from :func:`model_memory` and the spec); each run
    directory comes back as bytes and is written here. Returns the backend's description."""
    from .ray_tasks import WorkRoot, ray_session

    work = WorkRoot.create(Path(config.resume_dir).expanduser())
    try:
        with ray_session(config.ray_address, config.num_cpus) as ray:
            _run_tasks(ray, jobs, rows, work)
    finally:
        work.remove()
    return f"ray ({config.ray_address})" if config.ray_address else "ray (local)"


def _run_tasks(ray, jobs: list[Job], rows: dict[str, dict], work) -> None:
    """Submit every job as a task writing in ``work``, and write each run that comes back into its folder."""
    from .ray_tasks import RayTask, cluster_gpus, largest_node_memory, run_tasks

    largest = largest_node_memory(ray)
    gpus = cluster_gpus(ray)
    tasks = []
    by_key = {}
    for job in jobs:
        if largest:  # asking for more than any node has would wait forever: then the model runs alone
            job.memory = min(job.memory, largest)
        job.gpus = 1 if needs_gpu(job.spec) and gpus >= 1 else 0
        tasks.append(RayTask(job.name, job.config.experiment, job.record, job.memory, job.gpus, work=work))
        by_key[job.name] = job
    for task, payload in run_tasks(ray, tasks):
        job = by_key[task.key]
        seconds = float(payload.get("seconds", 0.0))
        where = {"started": payload.get("started"), "host": str(payload.get("host", ""))}
        if payload.get("status") == "ok":
            try:
                write_back(job, payload)
            except LayerscopeError as exc:
                rows[job.name] = _row(job, "failed", str(exc), seconds, **where)
            else:
                rows[job.name] = _row(job, "ok", "", seconds, **where)
                _say(f"{job.name}: done ({seconds:.1f} s)")
                continue
        else:
            rows[job.name] = _row(job, "failed", str(payload.get("reason", "unknown failure")), seconds, **where)
        _say(f"{job.name}: failed: {rows[job.name]['reason']}")


def write_back(job: Job, payload: dict) -> None:
    """Write the run directory a Ray task sent back (``payload["files"]``) into the model's folder, holding the
    folder's lock meanwhile as every run does (a folder another live run holds is refused in one line)."""
    run_dir = RunDir(job.run_dir)
    created = run_dir.claim(job.config.experiment)
    try:
        run_dir.write_files(payload["files"], job.config.experiment, payload.get("workdir"))
    except BaseException:
        run_dir.release(created)
        raise
    run_dir.unlock()


def _read_back(jobs: list[Job], rows: dict[str, dict], results: dict[str, Result]) -> None:
    """The result of every model that ran here and finished, read back from its run directory (no model
    loaded); one that cannot be read back becomes a failed row."""
    for job in jobs:
        if rows[job.name]["status"] != "ok":
            continue
        try:
            results[job.name] = load_run(job.run_dir)
        except Exception as exc:
            rows[job.name] = {**rows[job.name], "status": "failed", "reason": f"not read back: {_one_line(exc)}"}
