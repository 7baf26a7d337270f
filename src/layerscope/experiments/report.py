"""``layerscope report``: gather run directories into one self-contained, offline HTML page, in a run directory.

A report is a run like any other: ``--out DIR`` (default ``runs/report-<time>``) holds the page
(``report.html``), ``sections.csv`` (one row per gathered run) and ``run.json``, and
:func:`~layerscope.load_run` reopens it. Each gathered run directory becomes a section of the page (see
:mod:`layerscope.experiments.report_sections` for what is read and how safely); any subset of runs works, and a
directory without ``run.json`` is an error.

Example:
    >>> result = layerscope.report(["runs/tour/tokens", "runs/tour/inspect"], out="runs/tour-page")
    >>> result.page_path                      # runs/tour-page/report.html
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import LayerscopeError
from ..experiment import Result
from ..render.page import report_html
from ..render.people import is_positive
from ..render.section import Section
from ..run_files import ReadBudget, RunFiles
from ..rundir import default_run_dir
from ..runner import execute
from .report_config import PAGE, ReportConfig, _expanded, check_out  # noqa: F401  (declared in a light module)
from .report_sections import MAX_FILE_BYTES, REPORT_BUDGET_BYTES, read_section, tour_load_seconds

#: what ``sections.csv`` holds, one row per gathered run
_SECTION_COLUMNS = ("name", "experiment", "title", "command", "created", "run_dir")


@dataclass(kw_only=True, repr=False)
class ReportResult(Result):
    """The gathered run directories and their page.

    Attributes:
        sections: one :class:`Section` per run directory, in order (reopened by ``load_run``: their names,
            titles and commands only; the page holds the rest).
        model_load_s: seconds the shared model took to load (a tour's), shown in the page header; None if unknown.
        page: the page as saved (set by ``load_run``); None: rendered from ``sections``.
    """

    config: ReportConfig
    sections: list[Section]
    model_load_s: float | None = None
    page: str | None = None

    main_file = PAGE

    def html(self) -> str:
        """The whole self-contained page."""
        if self.page is None:
            self.page = report_html(self.sections, self.config.title, load_s=self.model_load_s)
        return self.page

    def texts(self) -> dict[str, str]:
        return {PAGE: self.html()}

    def tables(self) -> dict[str, pd.DataFrame]:
        rows = [[s.name, s.experiment, s.title, s.command, s.created, d] for s, d in self._sections_with_dirs()]
        return {"sections": pd.DataFrame(rows, columns=list(_SECTION_COLUMNS), dtype=str)}

    def _sections_with_dirs(self):
        dirs = list(self.config.run_dirs) + [""] * (len(self.sections) - len(self.config.run_dirs))
        return zip(self.sections, dirs, strict=False)

    def record(self) -> dict:
        return {"runs": len(self.sections), "model_load_s": self.model_load_s}

    @classmethod
    def from_files(cls, config, tables, arrays, record, run_dir) -> ReportResult:
        """A saved report (see :func:`layerscope.load_run`): its sections' names, titles and commands, and the page
        as written (read through :class:`~layerscope.run_files.RunFiles`, within :data:`MAX_FILE_BYTES`)."""
        rows = tables["sections"].fillna("").to_dict("records")
        sections = [Section(**{k: str(row[k]) for k in _SECTION_COLUMNS if k != "run_dir"}) for row in rows]
        page = RunFiles(run_dir).read(PAGE, MAX_FILE_BYTES).decode("utf-8", errors="replace")
        load = record.get("model_load_s")
        return cls(
            config=config,
            sections=sections,
            model_load_s=float(load) if is_positive(load) else None,
            page=page,
            **cls.saved(record),
        )

    def headline(self) -> str:
        return f"{type(self).__name__}({len(self.sections)} runs: {', '.join(s.experiment for s in self.sections)})"

    def summary(self) -> list[str]:
        return [f"{s.name}: {s.title}" for s in self.sections]


def run_report(config: ReportConfig) -> ReportResult:
    """Read each run directory of ``config`` as a section (files read within one budget), in page order."""
    start = time.perf_counter()
    dirs = [_expanded(d) or Path(d) for d in config.run_dirs]
    budget = ReadBudget(REPORT_BUDGET_BYTES)
    sections = [read_section(d, budget) for d in dirs]
    load = config.model_load_s if config.model_load_s is not None else tour_load_seconds(dirs, sections)
    return ReportResult(
        config=config,
        sections=sections,
        model_load_s=float(load) if is_positive(load) else None,
        timings={"read": time.perf_counter() - start},
    )


def report(
    run_dirs: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    out: str | os.PathLike | None = None,
    title: str = "layerscope report",
    force: bool = False,
) -> ReportResult:
    """Gather run directories into one self-contained, offline HTML page, written to ``out/report.html``.

    Args:
        run_dirs: run directories written by layerscope, in page order.
        out: the report's run directory (default ``runs/report-<time>``); the page is ``out/report.html``.
        title: the page title.
        force: replace what ``out`` holds (another run, other files) instead of refusing it.

    Example:
        >>> result = layerscope.report(["runs/tour/tokens", "runs/tour/inspect"], out="runs/tour-page")
        >>> result.sections[0].title
        'tokens: gemma-3-270m'
    """
    dirs = (run_dirs,) if isinstance(run_dirs, (str, os.PathLike)) else tuple(run_dirs)
    config = ReportConfig(run_dirs=tuple(os.fspath(d) for d in dirs), title=title)
    target = default_run_dir("report") if out is None else _expanded(out)
    if target is None:
        raise LayerscopeError(f"{str(out)!r} names the home directory of an unknown user; give another path")
    return execute(config, out=check_out(target), force=force)
