"""The outcome of a sweep: the status of each model, the merged tables, the figure across models, and the one
line naming the models that failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd

from ...experiment import Result
from ...load_run import load_run
from .config import SweepConfig
from .merge import merged_echo


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

    @classmethod
    def from_files(cls, config, tables, arrays, record, run_dir) -> SweepResult:
        """A saved sweep (see :func:`layerscope.load_run`): its status and merged tables, and each finished
        model's run reopened from its folder."""
        status = tables["sweep"]
        results = {
            str(row.model): load_run(run_dir / str(row.run_dir))
            for row in status.itertuples()
            if row.status in ("ok", "skipped")
        }
        order = [stem for result in results.values() for stem in result.tables()]  # the experiment's own order
        stems = sorted((s for s in tables if s != "sweep"), key=lambda s: order.index(s) if s in order else len(order))
        merged = {stem: tables[stem] for stem in stems}
        backend = str(record.get("backend") or "sequential")
        return cls(config=config, status=status, merged=merged, backend=backend, results=results, **cls.saved(record))

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
        images = {}
        lines = _LINES.get(self.experiment)
        if lines is not None and self.results:
            images["sweep"] = lambda: lines(self).png()
        if self.experiment == "echo" and self.results:
            images["sweep"] = lambda: merged_echo(self).rates_bars().png()
        if not images and (_FIGURES.get(self.experiment) is None or not self.results):  # the status, as figures()
            images["sweep"] = lambda: status_bars(self.status).png()
        if self.experiment == "layers" and "metrics" in self.merged and len(self.merged["metrics"]):
            from ...render.layer_grid import metrics_figure

            images["metrics"] = lambda: metrics_figure(self.merged["metrics"], title=self.title())
        return images

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
    from ...render.sweep import status_figure as draw

    return draw(status)


def status_bars(status: pd.DataFrame):
    from ...render.sweep import status_bars as bars

    return bars(status)


def _echo_figure(result: SweepResult):
    return merged_echo(result).figure()


def _layers_lines(result: SweepResult):
    from ...render.layer_grid import METRIC_LABELS
    from ...render.sweep import depth_lines

    metrics = result.merged["metrics"]
    columns = {c: label for c, label in METRIC_LABELS.items() if c in metrics.columns}
    return depth_lines(metrics, columns, title=f"{result.title()}: separation per layer on relative depth")


def _ablate_lines(result: SweepResult):
    from ...render.sweep import ablation_curves

    return ablation_curves(result.merged["accuracy"], title=f"{result.title()}: accuracy with a block removed")


# The line figures of a sweep, one description each: the interactive figure and the PNG are drawn from it.
_LINES = {"layers": _layers_lines, "ablate": _ablate_lines}
_FIGURES = {
    "echo": _echo_figure,
    "layers": lambda result: _layers_lines(result).plotly(),
    "ablate": lambda result: _ablate_lines(result).plotly(),
}


def failure_line(result: SweepResult) -> str | None:
    """One line naming the models that failed, or None."""
    failures = result.failures
    if not failures:
        return None
    named = "; ".join(f"{name} ({reason})" for name, reason in failures.items())
    return f"{len(failures)} of {len(result.status)} models failed: {named}"
