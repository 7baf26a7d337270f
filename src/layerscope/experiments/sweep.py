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
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from .. import progress
from ..errors import LayerscopeError
from ..experiment import ConfigError, ExperimentConfig, Result, option
from ..model_spec import ModelSpec, specs_argv, unique_name
from ..rundir import UNFINISHED, RunDir

#: bytes added to a model's weights for the Python process, torch and the forward's buffers
RUNTIME_OVERHEAD = 1 << 30
_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "auto": 2, None: 4}
#: experiments whose configs cannot be swept (no model of their own, or already several experiments)
_NOT_SWEPT = ("tour", "report", "layout", "sweep")


# ----- the config ------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class SweepConfig(ExperimentConfig):
    """What ``layerscope sweep`` runs.

    Attributes:
        base: the experiment's config; its model fields are replaced by each model in turn.
        models: the models, in order (``--model``, repeatable).
        ray_address: an existing Ray cluster (``ray start --head`` prints it); None: a local instance.
        use_ray: False (``--no-ray``) runs the models one after another in this process, as without Ray.
        num_cpus: CPUs of a local Ray instance (default: every core); each model takes one.
        memory_per_model: bytes (or ``"8GB"``) each model's task asks Ray for instead of the estimate.
        resume_dir: the sweep's directory (the runner sets it to ``out``).
    """

    experiment = "sweep"
    loads_own_models = True

    base: ExperimentConfig = option(flag="")
    models: tuple[ModelSpec, ...] = option((ModelSpec(),), flag="--model")
    ray_address: str | None = None
    use_ray: bool = option(True, flag="--no-ray")
    num_cpus: int | None = None
    memory_per_model: int | str | None = None
    resume_dir: str | None = option(None, flag="")

    def validate(self) -> None:
        if not isinstance(self.base, ExperimentConfig) or isinstance(self.base, SweepConfig):
            raise self.error("base", self.base, "must be an experiment's config, e.g. EchoConfig()")
        if self.base.experiment in _NOT_SWEPT or model_field(self.base) is None:
            raise self.error(
                "base", self.base.experiment, "cannot be swept over models; give an experiment with a model option"
            )
        if isinstance(self.models, (str, ModelSpec)) or not self.models:
            raise self.error("models", self.models, "must be a non-empty tuple of ModelSpec")
        if not all(isinstance(m, ModelSpec) for m in self.models):
            raise self.error("models", self.models, "must hold ModelSpec values; use ModelSpec.of(source)")
        super().validate()
        for spec in self.models:
            try:
                spec.validate()
            except LayerscopeError as exc:
                raise self.error("models", spec.value, f"is not valid: {exc}") from None
        per_model(self.base, self.models[0]).validate()  # the experiment's own options, named by their flags
        if self.num_cpus is not None and (not isinstance(self.num_cpus, int) or self.num_cpus < 1):
            raise self.error("num_cpus", self.num_cpus, "must be at least 1")
        if self.memory_per_model is not None:
            memory_bytes(self)
        if self.ray_address is not None and not str(self.ray_address).strip():
            raise self.error("ray_address", self.ray_address, "is empty; give HOST:PORT or ray://HOST:PORT")

    def to_record(self) -> dict:
        return {**dataclasses.asdict(self), "swept": self.base.experiment}

    def command(self) -> list[str]:
        """``layerscope sweep EXPERIMENT --model A --model B [the experiment's options] [sweep options]``."""
        inner = without_models(self.base).command()
        argv = ["layerscope", "sweep", self.base.experiment, *specs_argv(self.models), *inner[2:]]
        if self.ray_address:
            argv += ["--ray-address", str(self.ray_address)]
        if not self.use_ray:
            argv.append("--no-ray")
        if self.num_cpus:
            argv += ["--num-cpus", str(self.num_cpus)]
        if self.memory_per_model is not None:
            argv += ["--memory-per-model", str(self.memory_per_model)]
        return argv

    def run(self, model=None) -> SweepResult:
        return run_sweep(self)


def memory_bytes(config: SweepConfig) -> int | None:
    from ..capture import parse_budget

    if config.memory_per_model is None:
        return None
    try:
        value = parse_budget(config.memory_per_model)
    except LayerscopeError:
        value = 0
    if value < 1:
        raise config.error("memory_per_model", config.memory_per_model, "is not a size; give bytes or e.g. '8GB'")
    return value


def model_field(config: ExperimentConfig) -> str | None:
    """``"model"`` or ``"models"``: the field of ``config`` a sweep replaces (None: it has neither)."""
    names = {f.name: f for f in fields(config)}
    if isinstance(getattr(config, "models", None), tuple) and "models" in names:
        return "models"
    if isinstance(getattr(config, "model", None), ModelSpec) and "model" in names:
        return "model"
    return None


def per_model(base: ExperimentConfig, spec: ModelSpec, run_dir: str | None = None) -> ExperimentConfig:
    """``base`` for the one model ``spec`` (and, for a resumable experiment, its run directory)."""
    name = model_field(base)
    config = dataclasses.replace(base, **{name: (spec,) if name == "models" else spec})
    if run_dir is not None and any(f.name == "resume_dir" for f in fields(config)):
        config = dataclasses.replace(config, resume_dir=run_dir)
    return config


def without_models(base: ExperimentConfig) -> ExperimentConfig:
    """``base`` with its model field (and resume directory) at their defaults: its options alone."""
    changes = {}
    for f in fields(base):
        if f.name in ("model", "models", "resume_dir"):
            changes[f.name] = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    return dataclasses.replace(base, **changes)


def config_of(experiment: str, record: dict, resume_dir: str | None = None) -> ExperimentConfig:
    """An experiment's config rebuilt from its ``run.json`` record (what a Ray task is given)."""
    import importlib

    from ..load_run import EXPERIMENTS, config_from_record

    if experiment not in EXPERIMENTS:
        raise LayerscopeError(f"unknown experiment {experiment!r}")
    module, config_name, _ = EXPERIMENTS[experiment]
    config = config_from_record(getattr(importlib.import_module(module), config_name), record)
    if resume_dir is not None and any(f.name == "resume_dir" for f in fields(config)):
        config = dataclasses.replace(config, resume_dir=resume_dir)
    return config


def config_class(experiment: str) -> type[ExperimentConfig]:
    """The config class of an experiment named as on the command line (``echo``, ``layers``, ``ablate``, ...)."""
    import importlib

    from ..errors import choices_text
    from ..load_run import EXPERIMENTS

    names = [n for n in EXPERIMENTS if n not in _NOT_SWEPT]
    if experiment not in names:
        raise ConfigError("experiment", experiment, f"cannot be swept; valid: {choices_text(names)}")
    module, config_name, _ = EXPERIMENTS[experiment]
    return getattr(importlib.import_module(module), config_name)


def plain(value: Any) -> Any:
    """JSON data as ``run.json`` holds it (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))


# ----- what a model needs, where it goes -------------------------------------------------------------
def model_source_path(spec: ModelSpec) -> str:
    if spec.source is None:
        from ..models.default import default_model_path

        return str(default_model_path())
    return spec.source


def model_memory(spec: ModelSpec) -> int:
    """Bytes a forward pass of ``spec``'s model needs, from its checkpoint's headers alone (no weights read).

    The header-only forward estimate of :mod:`layerscope.checkpoints.layout` where it has one, else the weights at
    the dtype they are loaded in (a GGUF is dequantized to float32); plus :data:`RUNTIME_OVERHEAD` for the
    process. A source whose headers cannot be read here (a model only the cluster's workers have) counts as the
    overhead alone.
    """
    try:
        source = model_source_path(spec)
    except LayerscopeError:
        return RUNTIME_OVERHEAD
    estimate = _forward_memory(source, spec.dtype or "float32")
    if estimate is None:
        estimate = _weights_memory(source, spec.dtype)
    return (estimate or 0) + RUNTIME_OVERHEAD


def _forward_memory(source: str, dtype: str) -> int | None:
    """``layerscope.checkpoints.layout.forward_memory`` (weights and capture buffers), when that exists."""
    from ..checkpoints import layout

    estimate = getattr(layout, "forward_memory", None)
    if estimate is None:
        return None
    try:
        value = estimate(source, dtype, batch=1)
    except (LayerscopeError, OSError, ValueError, TypeError):
        return None
    for name in ("total", "total_bytes", "bytes"):
        if isinstance(getattr(value, name, None), int):
            return int(getattr(value, name))
    return int(value) if isinstance(value, int) else None


def _weights_memory(source: str, dtype: str | None) -> int | None:
    from ..checkpoints.layout import read_layout

    try:
        found = read_layout(source)
    except (LayerscopeError, OSError, ValueError):
        return None
    per_parameter = 4 if found.format.startswith("gguf") else _DTYPE_BYTES.get(dtype, 4)
    return found.n_parameters * per_parameter


def needs_gpu(spec: ModelSpec) -> bool:
    """True when the model is placed by accelerate (``device_map``) somewhere other than the CPU or disk."""
    return spec.device_map is not None and str(spec.device_map).lower() not in ("cpu", "disk")


def planned_name(spec: ModelSpec) -> str:
    """The model's display name without loading it (as the loader names it): ``NAME=``, the default
    model's name, a GGUF's ``general.name``, a directory's name, a hub id's last part."""
    if spec.name:
        return spec.name
    if spec.source is None:
        from ..models.default import DEFAULT_MODEL_NAME

        return DEFAULT_MODEL_NAME
    path = Path(spec.source).expanduser()
    try:
        if path.is_file() and path.suffix.lower() == ".gguf":
            from ..models.gguf_cache import gguf_general_name

            return gguf_general_name(path) or path.stem
        if path.is_dir() and (path / "config.json").is_file():
            from ..models.loading import directory_name

            return directory_name(path)
    except (OSError, LayerscopeError):
        pass
    return spec.source.replace("\\", "/").rstrip("/").split("/")[-1] or "model"


def directory_for(name: str) -> str:
    """A folder name for a model name: path separators and a leading dot replaced."""
    text = "".join("_" if c in "/\\:\0" else c for c in name).strip() or "model"
    return "_" + text[1:] if text.startswith(".") else text


@dataclass
class Job:
    """One model of a sweep."""

    name: str
    spec: ModelSpec
    config: ExperimentConfig
    run_dir: Path
    memory: int
    gpus: int = 0

    @property
    def record(self) -> dict:
        return plain(self.config.to_record())


def finished(run_dir: Path, config: ExperimentConfig) -> bool:
    """True when ``run_dir`` holds a complete run of ``config``: a ``run.json`` of its experiment and config,
    no unfinished mark, and every file it lists."""
    try:
        record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    if not isinstance(record, dict) or record.get("experiment") != config.experiment:
        return False
    if (run_dir / UNFINISHED).exists() or record.get("config") != plain(config.to_record()):
        return False
    files = record.get("files")
    return isinstance(files, list) and all(isinstance(n, str) and (run_dir / n).is_file() for n in files)


def plan(config: SweepConfig, out: Path) -> list[Job]:
    """A job per model: its name (``name (2)`` for a name given twice), run directory, config and request."""
    jobs: list[Job] = []
    taken: set[str] = set()
    folders: set[str] = set()
    override = memory_bytes(config)
    for spec in config.models:
        wanted = planned_name(spec)
        name = unique_name(wanted, taken)
        folder = unique_name(directory_for(name), folders)
        taken.add(name)
        folders.add(folder)
        if name != wanted:  # the same name twice: the run's tables carry the unique one
            spec = dataclasses.replace(spec, name=name)
        run_dir = out / folder
        memory = override if override is not None else model_memory(spec)
        jobs.append(Job(name, spec, per_model(config.base, spec, str(run_dir)), run_dir, memory))
    return jobs


# ----- the result ------------------------------------------------------------------------------------
@dataclass(kw_only=True, repr=False)
class SweepResult(Result):
    """The outcome of a sweep.

    Attributes:
        status: one row per model: ``model, source, status`` (``ok``, ``failed``, ``skipped``: finished in an
            earlier run), ``reason`` (one line, for a failure), ``run_dir`` (its folder under the sweep's
            directory), ``seconds``, ``started`` (UTC), ``host`` (the machine it ran on), ``memory_request`` (bytes
            asked of Ray), ``gpus``.
        merged: ``{table stem: DataFrame}``: each table of the experiment, every finished model's rows (a
            ``model`` column added where the experiment's table has none).
        backend: ``"ray (local)"``, ``"ray (ADDRESS)"`` or ``"sequential"`` (and why).
    """

    config: SweepConfig
    status: pd.DataFrame
    merged: dict[str, pd.DataFrame] = field(default_factory=dict)
    backend: str = "sequential"
    results: dict[str, Result] = field(default_factory=dict)

    main_file: ClassVar[str] = "sweep.html"

    @property
    def failures(self) -> dict[str, str]:
        rows = self.status[self.status["status"] == "failed"]
        return dict(zip(rows["model"], rows["reason"]))

    @property
    def experiment(self) -> str:
        return self.config.base.experiment

    def summary(self) -> list[str]:
        lines = [f"{self.experiment} over {len(self.status)} models ({self.backend})"]
        for row in self.status.itertuples():
            if row.status == "failed":
                lines.append(f"{row.model}: failed: {row.reason}")
            elif row.status == "skipped":
                lines.append(f"{row.model}: skipped (finished in an earlier run)")
            else:
                lines.append(f"{row.model}: ok ({row.seconds:.1f} s)")
        return lines

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"sweep": self.status, **{k: v for k, v in self.merged.items() if k != "sweep"}}

    def figures(self) -> dict:
        figure = _FIGURES.get(self.experiment)
        if figure is None or not self.results:
            return {"sweep": lambda: status_figure(self.status)}
        return {"sweep": lambda: figure(self)}

    def images(self) -> dict:
        if self.experiment == "layers" and "metrics" in self.merged and len(self.merged["metrics"]):
            from ..render.layer_grid import metrics_figure

            return {"metrics": lambda: metrics_figure(self.merged["metrics"], title=self.title())}
        return {}

    def texts(self) -> dict[str, str]:
        if self.experiment == "echo" and self.results:
            echo = merged_echo(self)
            return {"echo.md": echo.markdown(), "echo.html": echo.html()}
        return {}

    def title(self) -> str:
        return f"{self.experiment} across {len(self.results)} models"

    def record(self) -> dict:
        return {
            "swept": self.experiment,
            "backend": self.backend,
            "status": dict(zip(self.status["model"], self.status["status"])),
            "failures": self.failures,
            "findings": self.findings(),
        }

    def findings(self) -> dict[str, str]:
        counts = self.status["status"].value_counts()
        said = ", ".join(f"{int(counts[s])} {s}" for s in ("ok", "skipped", "failed") if s in counts)
        sentence = f"{self.experiment} over {len(self.status)} models: {said}"
        if self.experiment == "echo" and self.results:
            sentence += "; " + merged_echo(self).findings().get("echo", "")
        return {"sweep": sentence}


def status_figure(status: pd.DataFrame):
    from ..render.sweep import status_figure as draw

    return draw(status)


def merged_echo(result: SweepResult):
    """The echo result of every finished model as one (seed 004's table across models)."""
    from .echo import EchoResult

    base = result.config.base
    specs = tuple(r.config.models[0] for r in result.results.values())
    return EchoResult(
        config=dataclasses.replace(base, models=specs or base.models),
        table=result.merged.get("echo", pd.DataFrame()),
        completions=result.merged.get("completions", pd.DataFrame()),
        models=[m for r in result.results.values() for m in r.models],
    )


def _echo_figure(result: SweepResult):
    return merged_echo(result).figure()


def _layers_figure(result: SweepResult):
    from ..render.layer_grid import METRIC_LABELS
    from ..render.sweep import depth_lines_figure

    metrics = result.merged["metrics"]
    columns = {c: label for c, label in METRIC_LABELS.items() if c in metrics.columns}
    return depth_lines_figure(metrics, columns, title=f"{result.title()}: separation per layer on relative depth")


def _ablate_figure(result: SweepResult):
    from ..render.sweep import ablation_curves_figure

    return ablation_curves_figure(result.merged["accuracy"], title=f"{result.title()}: accuracy with a block removed")


_FIGURES = {"echo": _echo_figure, "layers": _layers_figure, "ablate": _ablate_figure}


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


# ----- the run ---------------------------------------------------------------------------------------
def _one_line(exc: BaseException) -> str:
    from .sweep_ray import one_line

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
    todo = []
    for job in jobs:
        if finished(job.run_dir, job.config):
            rows[job.name] = _row(job, "skipped", "finished in an earlier run")
        else:
            todo.append(job)
    timings = {"models": 0.0}
    start = time.perf_counter()
    backend = "sequential"
    if todo:
        from .sweep_ray import ray_available

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
    status = pd.DataFrame([rows[job.name] for job in jobs])
    results = _read_back(jobs, status)
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


def _run_here(jobs: list[Job], rows: dict[str, dict]) -> None:
    """The models one after another in this process."""
    import socket

    from ..runner import execute

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
    from .sweep_ray import RayTask, cluster_gpus, largest_node_memory, ray_session, run_tasks

    with ray_session(config.ray_address, config.num_cpus) as ray:
        largest = largest_node_memory(ray)
        gpus = cluster_gpus(ray)
        tasks = []
        by_key = {}
        for job in jobs:
            if largest:  # asking for more than any node has would wait forever: then the model runs alone
                job.memory = min(job.memory, largest)
            job.gpus = 1 if needs_gpu(job.spec) and gpus >= 1 else 0
            tasks.append(RayTask(job.name, job.config.experiment, job.record, job.memory, job.gpus))
            by_key[job.name] = job
        for task, payload in run_tasks(ray, tasks):
            job = by_key[task.key]
            seconds = float(payload.get("seconds", 0.0))
            where = {"started": payload.get("started"), "host": str(payload.get("host", ""))}
            if payload.get("status") == "ok":
                try:
                    RunDir(job.run_dir).write_files(payload["files"], job.config.experiment, payload.get("workdir"))
                except LayerscopeError as exc:
                    rows[job.name] = _row(job, "failed", str(exc), seconds, **where)
                else:
                    rows[job.name] = _row(job, "ok", "", seconds, **where)
                    _say(f"{job.name}: done ({seconds:.1f} s)")
                    continue
            else:
                rows[job.name] = _row(job, "failed", str(payload.get("reason", "unknown failure")), seconds, **where)
            _say(f"{job.name}: failed: {rows[job.name]['reason']}")
    return f"ray ({config.ray_address})" if config.ray_address else "ray (local)"


def _read_back(jobs: list[Job], status: pd.DataFrame) -> dict[str, Result]:
    """The result of every model that finished, read back from its run directory (no model loaded)."""
    from ..load_run import load_run

    results = {}
    done = set(status.loc[status["status"].isin(["ok", "skipped"]), "model"])
    for job in jobs:
        if job.name in done:
            results[job.name] = load_run(job.run_dir)
    return results


# ----- the Python API --------------------------------------------------------------------------------
def sweep(
    experiment: ExperimentConfig | str,
    models: Sequence[ModelSpec | str | None] | ModelSpec | str | None = None,
    *,
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
        models: sources, :class:`~layerscope.ModelSpec` or None (the default model).
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
    from ..rundir import default_run_dir
    from ..runner import execute

    if isinstance(experiment, str):
        base = config_class(experiment)(**options)
    elif options:
        raise LayerscopeError(f"options {sorted(options)} apply only when the experiment is given by name")
    else:
        base = experiment
    model_list = list(models) if isinstance(models, (list, tuple)) else [models]
    config = SweepConfig(
        base=base,
        models=tuple(ModelSpec.of(m) for m in model_list),
        ray_address=ray_address,
        use_ray=use_ray,
        num_cpus=num_cpus,
        memory_per_model=memory_per_model,
    )
    result = execute(config, out=out if out is not None else default_run_dir("sweep"), force=force)
    for name, reason in result.failures.items():
        warnings.warn(f"model {name!r} failed: {reason}", stacklevel=2)
    return result


def failure_line(result: SweepResult) -> str | None:
    """One line naming the models that failed, or None."""
    failures = result.failures
    if not failures:
        return None
    named = "; ".join(f"{name} ({reason})" for name, reason in failures.items())
    return f"{len(failures)} of {len(result.status)} models failed: {named}"
