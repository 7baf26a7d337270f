"""The config of ``layerscope report`` (:func:`layerscope.report`), declared apart from the experiment.

Importing this module imports no torch, transformers or pandas: the command line builds its options from it, and
``--help`` or a bad value answers before any model code loads. ``run`` imports the experiment itself.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LayerscopeError
from ..experiment import ExperimentConfig, option

if TYPE_CHECKING:  # pragma: no cover
    from .report import ReportResult


#: the page in a report's run directory
PAGE = "report.html"


def _expanded(path: str | os.PathLike) -> Path | None:
    """``path`` with ``~`` expanded; None for ``~user`` of an unknown user."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return None


@dataclass(frozen=True, kw_only=True)
class ReportConfig(ExperimentConfig):
    """What ``layerscope report`` gathers (the run directory it writes is ``--out``, as for every experiment).

    Attributes:
        run_dirs: run directories written by layerscope (each holds a ``run.json``), in page order.
        title: the page title.
        model_load_s: Python only: seconds the model shared by these runs took to load (a tour passes its
            own), shown in the page header; None: read from the tour's ``run.json`` in the runs' folder, if any.
    """

    experiment = "report"

    run_dirs: tuple[str, ...] = option(
        positional=True, metavar="RUN_DIR", help="run directories written by layerscope commands"
    )
    title: str = option("layerscope report", help="the page title")
    model_load_s: float | None = option(None, flag="")

    def validate(self) -> None:
        super().validate()
        if not self.run_dirs:
            raise self.error(
                "run_dirs", self.run_dirs, "is empty; give one or more directories written by layerscope commands"
            )
        for run_dir in self.run_dirs:
            if _expanded(run_dir) is None:
                raise self.error("run_dirs", str(run_dir), "names the home directory of an unknown user")
            if not (_expanded(run_dir) / "run.json").is_file():
                raise self.error("run_dirs", str(run_dir), "is not a layerscope run directory: it has no run.json")
        load = self.model_load_s
        if load is not None and (
            isinstance(load, bool) or not isinstance(load, (int, float)) or not math.isfinite(load) or load < 0
        ):
            raise self.error("model_load_s", load, "must be a number of seconds of at least 0 (or None)")

    def run(self, model=None) -> ReportResult:
        from .report import run_report  # the experiment itself, with its heavy imports: only when it runs

        return run_report(self)


def check_out(out: str | os.PathLike) -> str | os.PathLike:
    """``out`` unless it names a page (``*.html``): a report writes a run directory, the page is ``out/report.html``."""
    if os.fspath(out).lower().endswith((".html", ".htm")):
        raise LayerscopeError(
            f"{os.fspath(out)!r} names a page; a report writes a run directory: give a directory "
            f"(the page is written as DIR/{PAGE})"
        )
    return out
