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
import os
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ...errors import LayerscopeError
from ...experiment import ExperimentConfig
from ...model_spec import ModelSpec, unique_name
from ...rundir import UNFINISHED
from .config import SweepConfig, memory_bytes, per_model, plain
from .memory import model_memory

#: a finished run's ``run.json`` above this size is not read (the model runs again)
MAX_RECORD_BYTES = 16 << 20
#: the suffixes of the files a run directory holds (a model's folder never ends in one)
RUN_FILE_SUFFIXES = frozenset({"csv", "json", "html", "md", "png", "npy", "npz", "txt", "svg", "part"})
#: a model's folder name is cut to this many characters
MAX_FOLDER_CHARACTERS = 100


def planned_name(spec: ModelSpec, default: str | None = None) -> str:
    """The model's display name without loading it (as the loader names it): ``NAME=``, the default
    model's name (``default``, where the experiment has its own default model), a GGUF's ``general.name``, a
    directory's name, a hub id's last part."""
    if spec.name:
        return spec.name
    if spec.source is None:
        from ...checkpoints.default import DEFAULT_MODEL_NAME

        return default or DEFAULT_MODEL_NAME
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
    """A folder name for a model name: path separators and control characters replaced, a leading dot (``..``,
    a hidden name) replaced, at most :data:`MAX_FOLDER_CHARACTERS` characters, and a name ending as a run
    directory's files do (``run.json``, ``echo.csv``, ``sweep.html``) given ``_`` for its last dot, so that no
    model's folder takes the place of a file the sweep writes beside it.

    Example:
        >>> [directory_for(n) for n in ("a/b", "..", "run.json", "Qwen2.5-0.5B")]
        ['a_b', '_.', 'run_json', 'Qwen2.5-0.5B']
    """
    text = "".join("_" if c in "/\\:" or unicodedata.category(c).startswith("C") else c for c in name)
    text = text.strip()[:MAX_FOLDER_CHARACTERS].strip() or "model"
    if text.startswith("."):
        text = "_" + text[1:]
    stem, dot, suffix = text.rpartition(".")
    if dot and suffix.lower() in RUN_FILE_SUFFIXES:
        text = f"{stem}_{suffix}"
    return text


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
    no unfinished mark, and every file it lists, each a regular file of its own inside ``run_dir`` (a link, a
    hard link, a FIFO or a name leaving the directory makes the run unfinished: the model runs again)."""
    record_file = _own_file(run_dir, "run.json")
    if record_file is None or record_file.st_size > MAX_RECORD_BYTES:
        return False
    try:
        record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    if not isinstance(record, dict) or record.get("experiment") != config.experiment:
        return False
    if os.path.lexists(run_dir / UNFINISHED) or record.get("config") != plain(config.to_record()):
        return False
    files = record.get("files")
    return isinstance(files, list) and all(isinstance(n, str) and _own_file(run_dir, n) is not None for n in files)


def _own_file(run_dir: Path, name: str) -> os.stat_result | None:
    """``run_dir/name``'s status when it is a regular file of the run's own (a relative name inside the
    directory, no link anywhere on the way, the directory itself included, and one hard link), else None."""
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or any(p in (".", "..") for p in parts):
        return None
    path = run_dir
    try:
        for folder in (run_dir, *(run_dir.joinpath(*parts[:i]) for i in range(1, len(parts)))):
            if not stat.S_ISDIR(os.lstat(folder).st_mode):
                return None
        info = os.lstat(path.joinpath(*parts))
    except (OSError, ValueError):
        return None
    return info if stat.S_ISREG(info.st_mode) and info.st_nlink == 1 else None


def plan(config: SweepConfig, out: Path) -> list[Job]:
    """A job per model: its name (``name (2)`` for a name given twice), run directory, config and request."""
    jobs: list[Job] = []
    taken: set[str] = set()
    folders: set[str] = set()
    override = memory_bytes(config)
    for spec in config.models:
        wanted = planned_name(spec, getattr(config.base, "default_model_name", None))
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
