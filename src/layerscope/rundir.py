"""Run directories: where each experiment writes its data, figures and ``run.json``."""

from __future__ import annotations

import datetime as dt
import platform
import sys
from dataclasses import asdict, is_dataclass
from importlib import metadata
from pathlib import Path

from .atomic import write_json

_PACKAGES = ("layerscope", "torch", "transformers", "numpy", "pandas", "plotly", "safetensors", "gguf")


def default_run_dir(experiment: str) -> Path:
    """``runs/<experiment>-<YYYYmmdd-HHMMSS>`` under the current directory."""
    return Path("runs") / f"{experiment}-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def model_record(model) -> dict:
    """What identifies a model in ``run.json``."""
    return {
        "source": model.source,
        "name": model.name,
        "fingerprint": model.fingerprint,
        "class": type(model.module).__name__,
        "n_layers": model.n_layers,
        "d_model": model.d_model,
        "dtype": str(model.dtype).replace("torch.", ""),
    }


def write_run_json(out: Path, experiment: str, config, models: list, timings: dict[str, float], **extra) -> Path:
    """Write ``run.json``: the experiment, its full config, models, package versions, timings, command line.

    ``models`` holds loaded models or records already made by :func:`model_record` (when the model is gone).
    """
    record = {
        "experiment": experiment,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv if Path(sys.argv[0]).name.startswith("layerscope") else None,
        "config": asdict(config) if is_dataclass(config) else dict(config),
        "models": [m if isinstance(m, dict) else model_record(m) for m in models],
        "versions": package_versions(),
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
        **extra,
    }
    return write_json(Path(out) / "run.json", record)
