"""The plan of a sweep: one :class:`Job` per model (its unique name, run directory, config and requests), and
which run directories already hold a finished run (a rerun skips those models).

Example:
    >>> models = (ModelSpec(), ModelSpec("path/to/qwen3", name="a/b"), ModelSpec(name="a/b"))
    >>> [(job.name, job.run_dir.name) for job in plan(SweepConfig(base=EchoConfig(), models=models), Path("runs/s"))]
    [('gemma-3-270m-q4_k_m', 'gemma-3-270m-q4_k_m'), ('a/b', 'a_b'), ('a/b (2)', 'a_b (2)')]
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ...errors import LayerscopeError
from ...experiment import ExperimentConfig
from ...model_spec import ModelSpec, unique_name
from ...rundir import UNFINISHED
from .config import SweepConfig, memory_bytes, per_model, plain
from .memory import model_memory


def planned_name(spec: ModelSpec) -> str:
    """The model's display name without loading it (as the loader names it): ``NAME=``, the default
    model's name, a GGUF's ``general.name``, a directory's name, a hub id's last part."""
    if spec.name:
        return spec.name
    if spec.source is None:
        from ...models.default import DEFAULT_MODEL_NAME

        return DEFAULT_MODEL_NAME
    path = Path(spec.source).expanduser()
    try:
        if path.is_file() and path.suffix.lower() == ".gguf":
            from ...models.gguf_cache import gguf_general_name

            return gguf_general_name(path) or path.stem
        if path.is_dir() and (path / "config.json").is_file():
            from ...models.loading import directory_name

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
