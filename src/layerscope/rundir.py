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

import contextlib
import csv
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import atomic_path, write_json, write_text
from .errors import LayerscopeError
from .fonts import font_fallback
from .registry import ENTRIES

if TYPE_CHECKING:  # pragma: no cover
    from .experiment import Result

#: a hidden file naming the experiment of a run not finished yet (removed when ``run.json`` is written)
UNFINISHED = ".layerscope-run"
#: a hidden file locked (``flock``) by the process writing the run, for the whole run; the lock dies with it
LOCK = ".layerscope-lock"

#: the folder of a run's resumable partial outputs (see :meth:`RunDir.write_part`)
PARTS = "parts"

#: real path of each run directory this process holds the lock of -> [file descriptor, depth]
_HELD: dict[str, list[int]] = {}

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

    A directory that holds another experiment's run, or files of no layerscope run, is refused (the files
    would mix) unless ``force``, which empties it first.
    """

    def __init__(self, path: str | os.PathLike):
        try:
            self.path = Path(path).expanduser()
        except RuntimeError:  # ~user of a user this system does not know
            raise LayerscopeError(f"--out {os.fspath(path)!r} names the home of an unknown user; give a path") from None

    # ----- guards ------------------------------------------------------------------------------------
    def existing_experiment(self) -> str | None:
        """The experiment of the finished run already in this directory, if any."""
        return self._experiment_in("run.json")

    def unfinished_experiment(self) -> str | None:
        """The experiment of a run started here that did not finish (interrupted), if any."""
        return self._experiment_in(UNFINISHED)

    def _experiment_in(self, name: str) -> str | None:
        try:
            record = json.loads((self.path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return str(record.get("experiment")) if isinstance(record, dict) and "experiment" in record else None

    def unrelated_files(self, experiment: str) -> list[str]:
        """Names in this directory that belong to no run of ``experiment``: everything when it holds neither a
        ``run.json`` nor an unfinished run's mark, apart from hidden ``.part`` temporaries and, for an experiment
        that resumes (its config has a ``resume_dir``), the ``parts/`` folder of partial outputs."""
        if not self.path.is_dir() or self.existing_experiment() or self.unfinished_experiment():
            return []
        names = []
        for entry in sorted(os.scandir(self.path), key=lambda e: e.name):
            if (entry.name.startswith(".") and entry.name.endswith(".part")) or entry.name == LOCK:
                continue
            if entry.name == PARTS and entry.is_dir(follow_symlinks=False) and _resumable(experiment):
                continue
            names.append(entry.name)
        return names

    def check_writable_for(self, experiment: str, force: bool = False) -> None:
        """Refuse a file, a directory with another experiment's run, or one with unrelated files.

        With ``force`` the directory is emptied instead (a symbolic link named as the directory is removed,
        never what it points to).
        """
        if force:
            self.empty()
            return
        if self.path.exists() and not self.path.is_dir():
            raise LayerscopeError(f"--out {str(self.path)!r} is a file; give a directory")
        found = self.existing_experiment() or self.unfinished_experiment()
        if found is not None and found != experiment:
            raise LayerscopeError(
                f"--out {str(self.path)!r} holds a {found!r} run; give a new directory for this {experiment!r} run, "
                "or --force to replace it"
            )
        strays = self.unrelated_files(experiment)
        if strays:
            shown = ", ".join(repr(n) for n in strays[:3]) + (f" and {len(strays) - 3} more" if len(strays) > 3 else "")
            raise LayerscopeError(
                f"--out {str(self.path)!r} holds files of no layerscope run ({shown}); give a new or empty directory, "
                "or --force to replace its contents"
            )

    def empty(self) -> None:
        """Remove everything in the directory (``--force``); links inside are removed, not followed."""
        if self.path.is_symlink():
            self.path.unlink()
            return
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise LayerscopeError(f"--out {str(self.path)!r} is a file; give a directory")
        for entry in os.scandir(self.path):
            if entry.name == LOCK:  # the lock of the run about to write here
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)

    def claim(self, experiment: str, force: bool = False) -> bool:
        """Create the directory if needed and take its :meth:`lock` (a directory another live run holds is
        refused), :meth:`check_writable_for`, remove the ``.part`` temporaries a killed run left, and mark the
        directory as an unfinished ``experiment`` run, so that what the run writes before ``run.json`` is known as
        its own. Everything here happens before any model is loaded, so an ``--out`` that cannot be written is
        refused at once. Returns whether the directory was created here; :meth:`unlock` (or :meth:`release`) ends
        the claim."""
        self.check_path(force)
        with self._writing():
            if force and self.path.is_symlink():  # --force replaces a link named as the directory, not its target
                self.path.unlink()
            if self.path.exists() and not self.path.is_dir():
                raise LayerscopeError(f"--out {str(self.path)!r} is a file; give a directory")
            created = not self.path.is_dir()
            self.path.mkdir(parents=True, exist_ok=True)
        self.lock()
        try:
            self.check_writable_for(experiment, force=force)
            with self._writing():
                self.remove_temporaries()
                if self.existing_experiment() is None:
                    write_json(self.path / UNFINISHED, {"experiment": experiment})
        except BaseException:
            self.release(created)
            raise
        return created

    def check_path(self, force: bool = False) -> None:
        """Refuse an ``--out`` that would lead the run's files somewhere else than it names, before anything is
        created: the home of an unknown user (``~nouser/x``), a ``..`` out of a folder that does not exist yet
        (``nosuch/../victim`` is ``victim`` once ``nosuch`` is made), a symbolic link inside a run directory this
        process writes (a tour's step), and, unless ``force`` (which replaces the link), ``--out`` itself a link."""
        text = str(self.path)
        if text.startswith("~"):  # expanduser leaves the home of a user it does not know
            raise LayerscopeError(f"--out {text!r} names the home of an unknown user; give a path")
        current = Path(self.path.anchor or ".")
        parts = self.path.parts[1:] if self.path.anchor else self.path.parts
        for index, part in enumerate(parts):
            if part == ".." and not os.path.lexists(current):
                raise LayerscopeError(
                    f"--out {text!r} goes up ('..') out of {str(current)!r}, which does not exist; name the directory "
                    "without '..'"
                )
            following = current / part
            if os.path.islink(following):
                holder = _held_around(current)
                if holder is not None:
                    raise LayerscopeError(
                        f"--out {text!r}: {str(following)!r} is a symbolic link inside the run directory {holder!r}, "
                        "which is never followed; remove it"
                    )
                if index == len(parts) - 1 and not force:
                    raise LayerscopeError(
                        f"--out {text!r} is a symbolic link; give a directory, or --force to replace the link (not "
                        "what it points to)"
                    )
            current = following

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A hidden temporary directory inside the claimed run directory (``.staging.xxxx.part``) for output too
        large to build in memory (a quantized model): when the block succeeds, each thing it holds is renamed into
        the run directory, else it is removed; one a killed run left is removed by the next :meth:`claim`."""
        tmp = Path(tempfile.mkdtemp(prefix=".staging.", suffix=".part", dir=self.path))
        try:
            yield tmp
            for entry in sorted(os.scandir(tmp), key=lambda e: e.name):
                os.replace(entry.path, self.path / entry.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @contextlib.contextmanager
    def _writing(self):
        """An ``OSError`` while preparing the directory becomes one line naming it."""
        try:
            yield
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise LayerscopeError(
                f"--out {str(self.path)!r} cannot be written ({reason}); give a directory you can write to"
            ) from None

    def remove_temporaries(self) -> None:
        """Remove the ``.part`` files (and temporary directories) a killed or interrupted run left here."""
        for entry in os.scandir(self.path):
            if not entry.name.endswith(".part"):
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name.startswith("."):
                    shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)

    def release(self, created: bool) -> None:
        """Undo :meth:`claim` after a run that failed before writing anything, and :meth:`unlock`."""
        marker = self.path / UNFINISHED
        self.unlock()
        try:
            if created and self.path.is_dir() and {e.name for e in os.scandir(self.path)} <= {UNFINISHED}:
                marker.unlink(missing_ok=True)
                self.path.rmdir()
        except OSError:  # someone else's file appeared meanwhile: leave the directory
            pass

    # ----- the lock ----------------------------------------------------------------------------------
    def lock(self) -> None:
        """Take the directory's lock (``flock`` on its ``.layerscope-lock``): one writer at a time.

        Held until :meth:`unlock`, or until the process ends however it ends (the kernel drops the lock of a
        killed process, so the next run resumes or replaces its directory). Taking it again in the same process
        nests. Another live process's lock is refused with one line.
        """
        import fcntl

        key = os.path.realpath(self.path)
        if key in _HELD:
            _HELD[key][1] += 1
            return
        path = self.path / LOCK
        while True:
            with self._writing():
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip()
                os.close(fd)
                who = f" (process {holder})" if holder.isdigit() else ""
                raise LayerscopeError(
                    f"--out {str(self.path)!r} is in use by another run{who}; wait for it to end or give another "
                    "directory"
                ) from None
            except OSError:  # a file system without locks: carry on unlocked, as before locks existed
                pass
            try:  # the previous holder may have removed the file between our open and our lock: lock the new one
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _HELD[key] = [fd, 1]

    def unlock(self) -> None:
        """Give back the lock :meth:`lock` took (the outermost unlock removes the lock file)."""
        key = os.path.realpath(self.path)
        held = _HELD.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] > 0:
            return
        del _HELD[key]
        try:
            os.unlink(self.path / LOCK)
        except OSError:
            pass
        os.close(held[0])

    # ----- writers -----------------------------------------------------------------------------------
    def write(self, result: Result, force: bool = False) -> Path:
        """Write everything ``result`` declares, then ``run.json``; returns the directory.

        A rerun into the same directory first takes the old ``run.json`` away (an interrupted rewrite never
        looks finished), and afterwards removes the files the old run wrote that this one did not. ``force``
        empties a directory that holds another run or unrelated files first.
        """
        experiment = result.config.experiment
        self.claim(experiment, force=force)
        try:
            return self._write(result)
        finally:
            self.unlock()

    def _write(self, result: Result) -> Path:
        experiment = result.config.experiment
        previous = self._previous_files()
        write_json(self.path / UNFINISHED, {"experiment": experiment})
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
            for stem, make in images.items():
                with font_fallback(result):  # text is laid out when the figure is built and when it is saved;
                    # the result's strings (its tables, labels) decide the script fonts tried
                    written.append(self.image(stem, make()))
        for name, text in result.texts().items():
            written.append(self.text(name, text))
        files = sorted(str(p.relative_to(self.path)) for p in written)
        for stale in set(previous) - set(files):
            (self.path / stale).unlink(missing_ok=True)
        timings = {**result.timings, "write": time.perf_counter() - start}
        self.run_json(result, timings, files)
        (self.path / UNFINISHED).unlink(missing_ok=True)
        return self.path

    def write_files(self, files: Mapping[str, bytes], experiment: str, moved_from: str | None = None) -> Path:
        """Write a finished run made elsewhere (another machine's run directory, as ``{relative name: bytes}``).

        Every file goes in atomically, ``run.json`` last; a name that is absolute or leaves the directory is
        refused. ``moved_from``: the directory the run was written to there; where ``run.json`` names it (the
        command's ``--out``, a config's resume directory) it now names this directory. Files of a previous run
        here that the new one lacks are removed.
        """
        record_bytes = files.get("run.json")
        if record_bytes is None:
            raise LayerscopeError(f"the {experiment!r} run for {str(self.path)!r} came back without run.json")
        names = [n for n in files if n not in ("run.json", UNFINISHED)]
        for name in names:
            if not name or Path(name).is_absolute() or ".." in Path(name).parts:
                raise LayerscopeError(
                    f"the {experiment!r} run for {str(self.path)!r} names a file outside it: {name!r}"
                )
        try:
            record = json.loads(record_bytes.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise LayerscopeError(
                f"the {experiment!r} run for {str(self.path)!r} came back with a broken run.json"
            ) from None
        if not isinstance(record, dict) or record.get("experiment") != experiment:
            raise LayerscopeError(f"the run for {str(self.path)!r} came back as another experiment's run")
        self.check_writable_for(experiment)
        self.path.mkdir(parents=True, exist_ok=True)
        root = self.path.resolve()
        for name in names:  # no link inside the directory leads a file out of it
            if not (root / name).resolve().is_relative_to(root):
                raise LayerscopeError(
                    f"the {experiment!r} run for {str(self.path)!r} names a file outside it: {name!r}"
                )
        previous = self._previous_files()
        write_json(self.path / UNFINISHED, {"experiment": experiment})
        (self.path / "run.json").unlink(missing_ok=True)
        for name in names:
            with atomic_path(self.path / name) as tmp:
                tmp.write_bytes(files[name])
        for stale in set(previous) - set(names):
            (self.path / stale).unlink(missing_ok=True)
        if moved_from:
            record = _moved(record, moved_from.rstrip("/"), str(self.path))
        write_json(self.path / "run.json", record)
        (self.path / UNFINISHED).unlink(missing_ok=True)
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
        """``<stem>.csv`` (no index), read back by pandas to exactly the rows written.

        Every field that is not a number is quoted, so a token's ``\\r``, ``\\n``, quotes, commas or NUL stay
        inside its field; rows end in ``\\n``. The file is UTF-8, except that a lone surrogate (text no UTF-8 can
        hold, e.g. from a ``"\\ud800"`` escape in a JSON set file) is written as its 3-byte ``surrogatepass``
        form: ``pd.read_csv(path, encoding_errors="surrogatepass")`` (as :func:`layerscope.load_run` does) reads
        it back (with ``dtype=object`` for text where pyarrow is installed: pandas' pyarrow strings refuse lone
        surrogates); a table without such text is plain UTF-8.
        """
        path = self.path / f"{stem}.csv"
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n", errors="surrogatepass")
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

    # ----- partial outputs: what a resumable run has finished so far -----------------------------------
    def part_path(self, name: str) -> Path:
        """Where the partial output ``name`` lives: ``parts/<name>`` (one plain file name)."""
        if not name or name != Path(name).name or name.startswith("."):
            raise LayerscopeError(f"a partial output is named by one file name, not {name!r}")
        return self.path / PARTS / name

    def write_part(self, name: str, text: str) -> Path:
        """Write the partial output ``name`` whole or not at all, the moment it is finished: an interrupted
        run keeps every finished part and never a half file, and a rerun into this directory finds them."""
        return write_text(self.part_path(name), text)

    def read_part(self, name: str) -> str | None:
        """The text of the partial output ``name``, or None when it was not written."""
        try:
            return self.part_path(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def has_part(self, name: str) -> bool:
        return self.part_path(name).is_file()

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


def _held_around(path: Path) -> str | None:
    """The run directory this process holds the lock of that ``path`` is (or lies inside), if any."""
    real = os.path.realpath(path)
    for held in _HELD:
        if real == held or real.startswith(held.rstrip(os.sep) + os.sep):
            return held
    return None


def _resumable(experiment: str) -> bool:
    """Whether ``experiment`` resumes from partial outputs (its config has a ``resume_dir``)."""
    found = ENTRIES.get(experiment)
    if found is None or found.config is None:
        return False
    return any(f == "resume_dir" for f in found.config_class().__dataclass_fields__)


def _moved(value, old: str, new: str):
    """``value`` (JSON data) with the path ``old``, alone or as the start of a path, replaced by ``new``."""
    if isinstance(value, str):
        if value == old:
            return new
        return new + value[len(old) :] if value.startswith(old + "/") else value
    if isinstance(value, list):
        return [_moved(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _moved(v, old, new) for k, v in value.items()}
    return value
