"""``layerscope report``: gather run directories into one self-contained, offline HTML page.

Each run directory becomes a section: its interactive figures (the ``*.plotly.json`` specs written
beside every HTML figure), each with the sentence its experiment wrote about it (``findings`` in
``run.json``), key numbers from ``run.json`` formatted for people, the head of its CSV tables, and the
command that reproduces it. Any subset of runs works; a directory without ``run.json`` is an error.

Only regular files directly inside a run directory are read: a link that leads out of it, a FIFO, a
device or a socket is skipped with a warning (never opened), and so is a figure spec that is not valid
JSON. Every value placed in the page is escaped.

Example:
    >>> layerscope.report(["runs/tour/tokens", "runs/tour/inspect"], out="runs/tour/report.html")
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import shlex
import stat
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..atomic import write_text
from ..errors import LayerscopeError
from ..experiment import ExperimentConfig, Result, option
from ..render.page import render_page, report_html
from ..render.people import is_positive, value_display
from ..render.section import Section
from ..runner import Caller, execute

# Figures and tables in the order a reader meets them; files not listed follow alphabetically.
_FIGURE_ORDER = (
    "index", "heatmap", "logit_lens", "layers", "metrics", "accuracy", "echo", "treemap", "cka", "errors", "agreement",
)  # fmt: skip
_TABLE_ROWS = 25
# run.json keys that are bookkeeping, not key numbers.
_BOOKKEEPING = {
    "experiment", "created", "command", "config", "models", "versions", "timings_s", "files", "table_dtypes",
    "findings",
}  # fmt: skip
#: the largest file the report reads from a run directory (a bigger one is skipped with a warning)
MAX_FILE_BYTES = 512 * 1024 * 1024
_SPEC = ".plotly.json"


# ----- reading a run directory safely --------------------------------------------------------------------------


class _RunFiles:
    """The regular files directly inside one run directory; anything else is skipped with a warning."""

    def __init__(self, run_dir: Path, *, quiet: bool = False):
        self.run_dir = run_dir
        self.quiet = quiet
        self.root = os.path.realpath(run_dir)
        self.skipped: list[str] = []
        self.files: dict[str, str] = {}  # name -> real path (a regular file inside the directory)
        try:
            entries = sorted(os.scandir(run_dir), key=lambda e: e.name)
        except OSError as exc:
            raise LayerscopeError(f"cannot read the run directory {str(run_dir)!r}: {exc.strerror or exc}") from None
        for entry in entries:
            real = os.path.realpath(entry.path)
            if entry.is_symlink() and os.path.commonpath([self.root, real]) != self.root:
                self._skip(entry.name, "a link that leads out of the run directory")
                continue
            try:
                mode = os.stat(real).st_mode
            except OSError as exc:
                self._skip(entry.name, f"cannot be read ({exc.strerror or exc})")
                continue
            if stat.S_ISDIR(mode):
                continue  # layers/, parts/: folders of the run, not shown
            if not stat.S_ISREG(mode):
                self._skip(entry.name, "not a regular file")
                continue
            self.files[entry.name] = real

    def _skip(self, name: str, why: str) -> None:
        self.skipped.append(f"{name}: {why}")
        if not self.quiet and name != "run.json":  # a run.json not read is an error (see read_section)
            warnings.warn(f"report: skipped {str(self.run_dir / name)!r}: {why}", stacklevel=3)

    def named(self, suffix: str) -> list[str]:
        return [name for name in self.files if name.endswith(suffix) and len(name) > len(suffix)]

    def read(self, name: str) -> bytes | None:
        """The bytes of ``name``, opened without following a further link and without blocking, or None."""
        real = self.files.get(name)
        if real is None:
            return None
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(real, flags)
        except OSError as exc:
            self._skip(name, f"cannot be read ({exc.strerror or exc})")
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):  # swapped for something else since the listing
                self._skip(name, "not a regular file")
                return None
            if info.st_size > MAX_FILE_BYTES:
                self._skip(name, f"larger than {MAX_FILE_BYTES // 2**20} MiB")
                return None
            with os.fdopen(fd, "rb", closefd=False) as handle:
                return handle.read(MAX_FILE_BYTES + 1)[:MAX_FILE_BYTES]
        finally:
            os.close(fd)

    def text(self, name: str) -> str | None:
        data = self.read(name)
        return None if data is None else data.decode("utf-8", errors="replace")


def _ordered(names: list[str], stem_of) -> list[str]:
    def key(name: str):
        stem = stem_of(name)
        return (_FIGURE_ORDER.index(stem) if stem in _FIGURE_ORDER else len(_FIGURE_ORDER), stem)

    return sorted(names, key=key)


def _command(record: dict, run_dir: Path) -> str:
    argv = record.get("command")
    if isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv):
        return "layerscope " + shlex.join(argv[1:])
    name = {"capture": "residuals"}.get(str(record.get("experiment")), record.get("experiment", "?"))
    return f"(made from Python: layerscope.{name}(...), config in {run_dir / 'run.json'})"


def _figure_spec(text: str) -> str | None:
    """The spec as compact JSON when it is a plotly figure (an object with a ``data`` list), else None."""
    try:
        spec = json.loads(text, parse_constant=lambda _: None)  # NaN/Infinity: not JSON for a browser
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(spec, dict) or not isinstance(spec.get("data"), list):
        return None
    if not isinstance(spec.get("layout", {}), dict) or not isinstance(spec.get("frames", []), list):
        return None
    if not all(isinstance(trace, dict) for trace in spec["data"]):
        return None
    return json.dumps(spec, separators=(",", ":"), ensure_ascii=False)


# ----- one section ------------------------------------------------------------------------------------------------


def read_section(run_dir: str | Path) -> Section:
    """Read one run directory into a :class:`Section` (only regular files inside it; see the module)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LayerscopeError(f"{str(run_dir)!r} is not a layerscope run directory: it has no run.json")
    files = _RunFiles(run_dir)
    record_path = run_dir / "run.json"
    if "run.json" not in files.files:
        reason = next((s.split(": ", 1)[1] for s in files.skipped if s.startswith("run.json: ")), None)
        why = f"its run.json is {reason}" if reason else "it has no run.json"
        raise LayerscopeError(f"{str(run_dir)!r} is not a layerscope run directory: {why}")
    try:
        record = json.loads(files.text("run.json") or "")
    except (json.JSONDecodeError, RecursionError) as exc:
        raise LayerscopeError(f"cannot read {str(record_path)!r}: {exc}") from None
    if not isinstance(record, dict):
        raise LayerscopeError(f"cannot read {str(record_path)!r}: it holds no JSON object")
    experiment = str(record.get("experiment", "run"))
    models = record.get("models") if isinstance(record.get("models"), list) else []
    names = ", ".join(str(m.get("name", "?")) for m in models if isinstance(m, dict)) or "no model"
    section = Section(
        name=run_dir.name,
        experiment=experiment,
        title=f"{experiment}: {names}",
        command=_command(record, run_dir),
        created=str(record.get("created") or ""),
    )
    for key, value in record.items():
        if key not in _BOOKKEEPING:
            shown = value_display(str(key), value)
            if shown is not None:
                section.numbers[str(key).replace("_", " ")] = shown
    timings = record.get("timings_s")
    if isinstance(timings, dict):
        section.timings = {str(k): float(v) for k, v in timings.items() if is_positive(v)}
    findings = record.get("findings")
    if isinstance(findings, dict):
        section.findings = {str(k): str(v) for k, v in findings.items() if isinstance(v, str) and v}
    for name in _ordered(files.named(_SPEC), lambda n: n[: -len(_SPEC)]):
        text = files.text(name)
        spec = None if text is None else _figure_spec(text)
        if spec is None:
            if text is not None:
                files._skip(name, "not a valid plotly figure spec")
            continue
        section.figures.append((name[: -len(_SPEC)], spec))
    if not section.figures:
        for name in files.named(".png"):
            data = files.read(name)
            if data is not None:
                section.images.append((name, base64.b64encode(data).decode()))
    for name in sorted([*files.named(".md"), *files.named(".txt")]):
        text = files.text(name)
        if text is not None:
            section.texts.append((name, text if len(text) <= 60_000 else text[:60_000] + "\n..."))
    for name in _ordered(files.named(".csv"), lambda n: n[: -len(".csv")]):
        data = files.read(name)
        if data is None:
            continue
        try:
            frame = pd.read_csv(io.BytesIO(data), encoding_errors="replace")  # a lone surrogate: shown as U+FFFD
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
            files._skip(name, "not a readable CSV table")
            continue
        html = frame.head(_TABLE_ROWS).to_html(
            index=False, float_format=lambda v: f"{v:.4g}", border=0, classes="data", escape=True
        )
        section.tables.append((name, html, len(frame)))
    section.skipped = list(files.skipped)
    return section


def tour_load_seconds(run_dirs: Sequence[Path], sections: Sequence[Section]) -> float | None:
    """The model load time of the tour that wrote ``run_dirs``: all in one folder whose ``run.json`` is a tour's,
    written after every run (an older record belongs to another tour); else None."""
    parents = {os.path.realpath(Path(d).parent) for d in run_dirs}
    if len(parents) != 1 or not sections or not all(s.created for s in sections):
        return None
    try:
        record = json.loads(_RunFiles(Path(next(iter(parents))), quiet=True).text("run.json") or "null")
    except (LayerscopeError, json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(record, dict) or record.get("experiment") != "tour":
        return None
    created = record.get("created")
    if not isinstance(created, str) or created < max(s.created for s in sections):
        return None
    timings = record.get("timings_s")
    load = timings.get("load") if isinstance(timings, dict) else None
    return float(load) if is_positive(load) else None


@dataclass(frozen=True, kw_only=True)
class ReportConfig(ExperimentConfig):
    """What ``layerscope report`` gathers.

    Attributes:
        run_dirs: run directories written by layerscope (each holds a ``run.json``), in page order.
        out: the page to write.
        title: the page title.
        model_load_s: Python only: seconds the model shared by these runs took to load (a tour passes its
            own), shown in the page header; None: read from the tour's ``run.json`` in the runs' folder, if any.
    """

    experiment = "report"

    run_dirs: tuple[str, ...] = option(
        positional=True, metavar="RUN_DIR", help="run directories written by layerscope commands"
    )
    out: str = option("report.html", metavar="PAGE", help="the page to write (default report.html)")
    title: str = option("layerscope report", help="the page title")
    model_load_s: float | None = option(None, flag="")

    def validate(self) -> None:
        super().validate()
        if not self.run_dirs:
            raise self.error(
                "run_dirs", self.run_dirs, "is empty; give one or more directories written by layerscope commands"
            )
        for run_dir in self.run_dirs:
            if not (Path(run_dir).expanduser() / "run.json").is_file():
                raise self.error("run_dirs", str(run_dir), "is not a layerscope run directory: it has no run.json")
        if not str(self.out).strip():
            raise self.error("out", self.out, "is empty; give a file name for the page")
        if Path(self.out).expanduser().is_dir():
            raise self.error("out", self.out, "is a directory; give a file name for the page")
        load = self.model_load_s
        if load is not None and (
            isinstance(load, bool) or not isinstance(load, (int, float)) or not math.isfinite(load) or load < 0
        ):
            raise self.error("model_load_s", load, "must be a number of seconds of at least 0 (or None)")

    def run(self, model=None) -> ReportResult:
        start = time.perf_counter()
        dirs = [Path(d).expanduser() for d in self.run_dirs]
        sections = [read_section(d) for d in dirs]
        load = self.model_load_s if self.model_load_s is not None else tour_load_seconds(dirs, sections)
        return ReportResult(
            config=self,
            sections=sections,
            model_load_s=float(load) if is_positive(load) else None,
            timings={"read": time.perf_counter() - start},
        )


@dataclass(kw_only=True, repr=False)
class ReportResult(Result):
    """The gathered run directories; :meth:`save` writes the page (one file, not a run directory).

    Attributes:
        sections: one :class:`Section` per run directory, in order.
        model_load_s: seconds the shared model took to load (a tour's), shown in the page header; None if unknown.
    """

    config: ReportConfig
    sections: list[Section]
    model_load_s: float | None = None

    main_file = "report.html"

    def html(self) -> str:
        """The whole self-contained page."""
        return report_html(self.sections, self.config.title, load_s=self.model_load_s)

    def save(self, out: str | os.PathLike | None = None, *, force: bool = False) -> Path:
        """Write the page to ``out`` (default ``config.out``) atomically; returns its path (a page is one file,
        replaced whatever ``force`` says)."""
        return write_text(Path(out if out is not None else self.config.out).expanduser(), self.html())

    def headline(self) -> str:
        return f"{type(self).__name__}({len(self.sections)} runs: {', '.join(s.experiment for s in self.sections)})"

    def summary(self) -> list[str]:
        return [f"{s.name}: {s.title}" for s in self.sections]

    def _repr_html_(self) -> str:
        import html

        items = "".join(f"<li>{html.escape(line)}</li>" for line in self.summary())
        return f"<b>{html.escape(self.headline())}</b><ul>{items}</ul>"


def execute_report(config: ReportConfig, via: Caller = "python") -> tuple[ReportResult, Path]:
    """Validate, gather and write ``config.out`` (the Python API and the CLI); returns the result and the page."""
    result = execute(config, via=via)
    return result, result.save()


def report(
    run_dirs: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    out: str | os.PathLike = "report.html",
    title: str = "layerscope report",
) -> ReportResult:
    """Gather run directories into one self-contained, offline HTML page, written to ``out``.

    Example:
        >>> result = layerscope.report(["runs/tour/tokens", "runs/tour/inspect"], out="runs/tour/report.html")
        >>> result.sections[0].title
        'tokens: gemma-3-270m'
    """
    dirs = (run_dirs,) if isinstance(run_dirs, (str, os.PathLike)) else tuple(run_dirs)
    config = ReportConfig(run_dirs=tuple(os.fspath(d) for d in dirs), out=os.fspath(out), title=title)
    return execute_report(config)[0]


def build_report(run_dirs: list[str | Path], out: str | Path, title: str = "layerscope report") -> Path:
    """Write one self-contained HTML page gathering ``run_dirs``; returns its path.

    Example:
        >>> build_report(["runs/tour/tokens", "runs/tour/inspect"], "runs/tour/report.html")
    """
    if not run_dirs:
        raise LayerscopeError("no run directory given; pass one or more directories written by layerscope commands")
    dirs = [Path(d) for d in run_dirs]
    sections = [read_section(d) for d in dirs]
    return render_page(sections, Path(out), title, load_s=tour_load_seconds(dirs, sections))
