"""``layerscope report``: gather run directories into one self-contained, offline HTML page.

Each run directory becomes a section: its interactive figures (the ``*.plotly.json`` specs written
beside every HTML figure), key numbers from ``run.json``, the head of its CSV tables, and the command
that reproduces it. Any subset of runs works; a directory without ``run.json`` is an error.

Example:
    >>> layerscope.report(["runs/tour/tokens", "runs/tour/inspect"], out="runs/tour/report.html")
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import LayerscopeError
from ..experiment import ExperimentConfig, Result, option
from ..runner import Caller, execute

# Figures and tables in the order a reader meets them; files not listed follow alphabetically.
_FIGURE_ORDER = ("index", "heatmap", "logit_lens", "layers", "metrics", "accuracy", "echo", "treemap")
_TABLE_ROWS = 25
# run.json keys that are bookkeeping, not findings.
_BOOKKEEPING = {"experiment", "created", "command", "config", "models", "versions", "timings_s", "files"}


@dataclass
class Section:
    """One run directory, ready to render."""

    name: str
    experiment: str
    title: str
    command: str
    figures: list[tuple[str, str]] = field(default_factory=list)  # (file stem, plotly JSON spec)
    numbers: dict[str, str] = field(default_factory=dict)
    tables: list[tuple[str, str, int]] = field(default_factory=list)  # (file name, HTML table, total rows)
    images: list[str] = field(default_factory=list)  # PNG names shown when a run has no interactive figure
    texts: list[tuple[str, str]] = field(default_factory=list)  # (file name, text) of .md / .txt outputs


def _ordered(paths: list[Path], stem_of) -> list[Path]:
    def key(path: Path):
        stem = stem_of(path)
        return (_FIGURE_ORDER.index(stem) if stem in _FIGURE_ORDER else len(_FIGURE_ORDER), stem)

    return sorted(paths, key=key)


def _command(record: dict, run_dir: Path) -> str:
    argv = record.get("command")
    if argv:
        return "layerscope " + shlex.join(argv[1:])
    name = {"capture": "residuals"}.get(str(record.get("experiment")), record.get("experiment", "?"))
    return f"(made from Python: layerscope.{name}(...), config in {run_dir / 'run.json'})"


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and value and all(isinstance(v, float) for v in value):
        return ", ".join(f"{v:.3g}" for v in value[:12]) + (" ..." if len(value) > 12 else "")
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 300 else text[:300] + " ..."


def read_section(run_dir: str | Path) -> Section:
    """Read one run directory into a :class:`Section`."""
    run_dir = Path(run_dir)
    record_path = run_dir / "run.json"
    if not record_path.is_file():
        raise LayerscopeError(f"{str(run_dir)!r} is not a layerscope run directory: it has no run.json")
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise LayerscopeError(f"cannot read {str(record_path)!r}: {exc}") from exc
    experiment = str(record.get("experiment", "run"))
    models = ", ".join(m.get("name", "?") for m in record.get("models", [])) or "no model"
    section = Section(
        name=run_dir.name,
        experiment=experiment,
        title=f"{experiment}: {models}",
        command=_command(record, run_dir),
    )
    for key, value in record.items():
        if key not in _BOOKKEEPING and value not in (None, [], {}):
            section.numbers[key] = _short(value)
    for key, value in (record.get("timings_s") or {}).items():
        section.numbers[f"time: {key}"] = f"{value:.2f} s"
    specs = _ordered(list(run_dir.glob("*.plotly.json")), lambda p: p.name[: -len(".plotly.json")])
    for spec in specs:
        section.figures.append((spec.name[: -len(".plotly.json")], spec.read_text(encoding="utf-8")))
    if not specs:
        section.images = [p.name for p in sorted(run_dir.glob("*.png"))]
    for text_file in sorted([*run_dir.glob("*.md"), *run_dir.glob("*.txt")]):
        text = text_file.read_text(encoding="utf-8", errors="replace")
        section.texts.append((text_file.name, text if len(text) <= 60_000 else text[:60_000] + "\n..."))
    for csv in _ordered(list(run_dir.glob("*.csv")), lambda p: p.stem):
        try:
            frame = pd.read_csv(csv)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            continue
        html = frame.head(_TABLE_ROWS).to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, classes="data")
        section.tables.append((csv.name, html, len(frame)))
    return section


@dataclass(frozen=True, kw_only=True)
class ReportConfig(ExperimentConfig):
    """What ``layerscope report`` gathers.

    Attributes:
        run_dirs: run directories written by layerscope (each holds a ``run.json``), in page order.
        out: the page to write.
        title: the page title.
    """

    experiment = "report"

    run_dirs: tuple[str, ...] = option(positional=True)
    out: str = "report.html"
    title: str = "layerscope report"

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

    def run(self, model=None) -> ReportResult:
        start = time.perf_counter()
        sections = [read_section(Path(d).expanduser()) for d in self.run_dirs]
        return ReportResult(config=self, sections=sections, timings={"read": time.perf_counter() - start})


@dataclass(kw_only=True, repr=False)
class ReportResult(Result):
    """The gathered run directories; :meth:`save` writes the page (one file, not a run directory).

    Attributes:
        sections: one :class:`Section` per run directory, in order.
    """

    config: ReportConfig
    sections: list[Section]

    main_file = "report.html"

    def html(self) -> str:
        """The whole self-contained page."""
        from ..render.page import report_html

        return report_html(self.sections, self.config.title, [Path(d).expanduser() for d in self.config.run_dirs])

    def save(self, out: str | os.PathLike | None = None, *, force: bool = False) -> Path:
        """Write the page to ``out`` (default ``config.out``) atomically; returns its path (a page is one file,
        replaced whatever ``force`` says)."""
        from ..atomic import write_text

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
    from ..render.page import render_page

    if not run_dirs:
        raise LayerscopeError("no run directory given; pass one or more directories written by layerscope commands")
    sections = [read_section(d) for d in run_dirs]
    return render_page(sections, Path(out), title, base_dirs=[Path(d) for d in run_dirs])
