"""Run directories: the one writer of every experiment's data, figures and ``run.json``.

:class:`RunDir` is the only code that writes a run's CSV, NPY, HTML (+ plotly spec), PNG, text and
``run.json`` files. Each file goes to a temporary name and is renamed into place, so an interrupted
write never leaves a half file; ``run.json`` is written last and marks a finished run.

Example:
    >>> result = layerscope.tokens(["digits"])
    >>> RunDir("runs/digits").write(result)
    PosixPath('runs/digits')
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import atomic_path, write_json, write_text
from .errors import LayerscopeError

if TYPE_CHECKING:  # pragma: no cover
    from .experiment import Result

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


def model_record(model, display_name: str | None = None, **extra) -> dict:
    """What identifies a loaded model in ``run.json`` and in a result's ``models``."""
    record = {
        "source": model.source,
        "name": model.name,
        "display_name": display_name or model.name,
        "fingerprint": model.fingerprint,
        "class": type(model.module).__name__,
        "n_layers": model.n_layers,
        "d_model": model.d_model,
        "dtype": str(model.dtype).replace("torch.", ""),
    }
    return {**record, **extra}


class RunDir:
    """One run directory.

    A directory that already holds another experiment's run is refused (the files would mix).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()

    # ----- guards ------------------------------------------------------------------------------------
    def existing_experiment(self) -> str | None:
        """The experiment of the finished run already in this directory, if any."""
        try:
            record = json.loads((self.path / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return str(record.get("experiment")) if isinstance(record, dict) else None

    def check_writable_for(self, experiment: str) -> None:
        """Refuse a directory that is a file, or that holds a finished run of another experiment."""
        if self.path.exists() and not self.path.is_dir():
            raise LayerscopeError(f"--out {str(self.path)!r} is a file; give a directory")
        found = self.existing_experiment()
        if found is not None and found != experiment:
            raise LayerscopeError(
                f"--out {str(self.path)!r} holds a {found!r} run; give a new directory for this {experiment!r} run"
            )

    # ----- writers -----------------------------------------------------------------------------------
    def write(self, result: Result) -> Path:
        """Write everything ``result`` declares, then ``run.json``; returns the directory.

        A rerun into the same directory first takes the old ``run.json`` away (an interrupted rewrite never
        looks finished), and afterwards removes the files the old run wrote that this one did not.
        """
        experiment = result.config.experiment
        self.check_writable_for(experiment)
        self.path.mkdir(parents=True, exist_ok=True)
        previous = self._previous_files()
        (self.path / "run.json").unlink(missing_ok=True)
        start = time.perf_counter()
        written: list[Path] = []
        for stem, frame in result.tables().items():
            written.append(self.table(stem, frame))
        for stem, array in result.arrays().items():
            written.append(self.array(stem, array))
        for stem, make in result.figures().items():
            written += [self.figure(stem, make()), self.path / f"{stem}.plotly.json"]
        images = result.images()
        if images:
            from .render.static import font_fallback

            for stem, make in images.items():
                with font_fallback():  # text is laid out when the figure is built and when it is saved
                    written.append(self.image(stem, make()))
        for name, text in result.texts().items():
            written.append(self.text(name, text))
        files = sorted(str(p.relative_to(self.path)) for p in written)
        for stale in set(previous) - set(files):
            (self.path / stale).unlink(missing_ok=True)
        timings = {**result.timings, "write": time.perf_counter() - start}
        self.run_json(result, timings, files)
        return self.path

    def _previous_files(self) -> list[str]:
        """The files the finished run already here wrote (as listed in its ``run.json``), inside this directory."""
        try:
            record = json.loads((self.path / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        files = record.get("files") if isinstance(record, dict) else None
        if not isinstance(files, list):
            return []
        root = self.path.resolve()
        inside = []
        for name in files:
            if isinstance(name, str) and (root / name).resolve().is_relative_to(root) and name != "run.json":
                inside.append(name)
        return inside

    def table(self, stem: str, frame) -> Path:
        """``<stem>.csv`` (no index)."""
        path = self.path / f"{stem}.csv"
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
        return path

    def array(self, stem: str, array) -> Path:
        """``<stem>.npy``; a dict of arrays becomes ``<stem>.npz``."""
        import numpy as np

        if isinstance(array, dict):
            path = self.path / f"{stem}.npz"
            with atomic_path(path) as tmp, open(tmp, "wb") as handle:
                np.savez(handle, **array)
            return path
        path = self.path / f"{stem}.npy"
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.asarray(array))
        return path

    def figure(self, stem: str, fig) -> Path:
        """``<stem>.html``, self-contained (plotly.js inlined: works offline), and ``<stem>.plotly.json``.

        The spec lets ``layerscope report`` put many figures on one page with a single plotly.js.
        """
        path = self.path / f"{stem}.html"
        with atomic_path(path) as tmp:
            # auto_play=False: a figure with frames (the layer slider) opens on its first frame and waits
            fig.write_html(tmp, include_plotlyjs=True, full_html=True, auto_play=False, config={"displaylogo": False})
        write_text(self.path / f"{stem}.plotly.json", fig.to_json())
        return path

    def image(self, stem: str, fig) -> Path:
        """``<stem>.png`` from a matplotlib figure, which is then closed."""
        path = self.path / f"{stem}.png"
        try:
            with atomic_path(path) as tmp, warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Glyph .* missing from font")
                fig.savefig(tmp, format="png")
        finally:
            if "matplotlib.pyplot" in sys.modules:  # a figure made through pyplot is released there
                sys.modules["matplotlib.pyplot"].close(fig)
        return path

    def text(self, name: str, text: str) -> Path:
        return write_text(self.path / name, text)

    def run_json(self, result: Result, timings: dict[str, float], files: list[str] | None = None) -> Path:
        """``run.json``: experiment, full config, models, versions, timings, the reproducing command, the files
        written, key numbers."""
        config = result.config
        record = {
            "experiment": config.experiment,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": [*config.command(), "--out", str(self.path)] if config.has_command else None,
            "config": config.to_record(),
            "models": result.models,
            "versions": package_versions(),
            "timings_s": {k: round(v, 4) for k, v in timings.items()},
            "files": files or [],
            "table_dtypes": result.table_dtypes(),
            **result.record(),
        }
        return write_json(self.path / "run.json", record)
