"""``layerscope tour``: every seed experiment on one model, each its own run directory, then one report.

The tour is a list of experiment configs (:func:`tour_steps`): each step is exactly what the command
line or the Python API would run, so its ``run.json`` carries the command that reproduces it. The
model is loaded once and shared; a step that fails is reported and the others still run; the report
gathers whatever finished.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import progress, quantize
from ..experiment import ExperimentConfig, Result, option
from ..model_spec import ModelSpec
from ..run_files import RunFiles
from ..rundir import model_record
from ..runner import execute
from .ablate_config import AblateConfig
from .compare_config import CompareConfig
from .echo_config import EchoConfig
from .inspect_config import InspectConfig
from .layers_config import LayersConfig
from .layout import LayoutConfig
from .patch_config import PatchConfig
from .tokens_config import TokensConfig

ARITHMETIC_PROMPTS = (
    "5+2=", "3+4=", "2+5=", "9-2=", "8-1=", "2*3=", "3*3=", "8/4=", "6/2=", "1+1=", "4+4=", "7-3=",
    "9-5=", "2*4=", "9/3=", "0+6=",
)  # fmt: skip


def quick_layers(n_layers: int | None) -> str:
    """The layers a quick tour shows: ``embed``, the first block, one a third of the way in, the last."""
    middle = 6 if n_layers is None else max(1, n_layers // 3)
    return f"embed,0,{middle},-1"


ABLATE_N = {True: 40, False: 200}

#: the tour's patching pair (the indirect-object names pair): clean, corrupt, answer, wrong
NAMES_PAIR = (
    "When Mary and John went to the store, John gave a drink to",
    "When Mary and John went to the store, Mary gave a drink to",
    " Mary",
    " John",
)
#: what the tour patches: the residual stream only in a quick tour, every part in the full one
PATCH_PARTS = {True: ("resid",), False: ("resid", "attn", "mlp", "heads")}


@dataclass(frozen=True)
class Step:
    """One experiment of the tour: its run directory's name, the seed it reproduces, its config, and what must
    exist before it runs (``prepare``, e.g. the re-quantized models ``compare`` reads)."""

    name: str
    seed: str
    config: ExperimentConfig
    prepare: Callable[[], object] | None = None


#: the MLX re-quantizations the tour's compare step measures against the model: (name, bits)
COMPARE_FORMATS = (("mlx-8bit", 8), ("mlx-4bit", 4))


def requantize(model: ModelSpec, out: Path) -> None:
    """Write the model's MLX re-quantizations of :data:`COMPARE_FORMATS` under ``out`` (``layerscope.quantize``,
    group size 64; a rerun of the tour replaces them)."""
    for name, bits in COMPARE_FORMATS:
        quantize(model.source, to="mlx", bits=bits, group_size=64, out=out / name, force=True)


def tour_steps(
    model: ModelSpec, quick: bool = False, n_layers: int | None = None, out: str | Path = "runs/tour"
) -> list[Step]:
    """The tour's experiments on ``model``, in the order the report shows them (``n_layers`` once it is loaded;
    ``out``: the tour's directory). ``patch`` runs on the names pair (:data:`NAMES_PAIR`): the residual stream
    in a quick tour, every part in the full one. The full tour ends with ``compare``: the model against its MLX 8- and 4-bit
    re-quantizations, written under ``out/quantized/`` first; ``quick`` leaves that step out."""
    prompts = ARITHMETIC_PROMPTS[:6] if quick else ARITHMETIC_PROMPTS
    quantized = Path(out) / "quantized"
    steps = [
        Step("tokens", "000", TokensConfig(model=model, sets=("digits", "number-words"), dims=3)),
        Step(
            "layers", "002",
            LayersConfig(models=(model,), sets=("categories",), basis="layer", layers=quick_layers(n_layers) if quick else "all"),
        ),
        Step("inspect", "001", InspectConfig(model=model, prompts=prompts)),
        Step("ablate", "001", AblateConfig(model=model, n=ABLATE_N[quick])),
        Step(
            "patch", "",
            PatchConfig(
                model=model, clean=NAMES_PAIR[0], corrupt=NAMES_PAIR[1], answer=NAMES_PAIR[2], wrong=NAMES_PAIR[3],
                part=PATCH_PARTS[quick],
            ),
        ),
        Step("echo", "004", EchoConfig(models=(model,))),
        Step("layout", "003", LayoutConfig(source=model.label)),
    ]  # fmt: skip
    if quick:  # the compare step quantizes the model twice and loads both copies: not for a first look
        return steps
    return [
        *steps,
        Step(
            "compare", "",
            CompareConfig(
                models=(model, *(ModelSpec(str(quantized / name), name=name) for name, _ in COMPARE_FORMATS)),
                prompts=prompts,
            ),
            prepare=lambda: requantize(model, quantized),
        ),
    ]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class TourConfig(ExperimentConfig):
    """What ``layerscope tour`` runs.

    Attributes:
        model: the model every step runs on (loaded once).
        quick: smaller prompt sets, for a first look or a test.
        out: the tour's directory; each step writes ``out/<step>``, the report goes to ``out/report.html``.
    """

    experiment = "tour"
    loads_own_models = True  # run_tour loads the model once (timed) and shares it; the report shows that time

    model: ModelSpec = option(ModelSpec(), flag="--model")
    quick: bool = option(False, help="smaller prompt sets, for a first look or a test")
    out: str = option("runs/tour", flag="")

    def steps(self, n_layers: int | None = None) -> list[Step]:
        return tour_steps(self.model, self.quick, n_layers, self.out)

    def validate(self) -> None:
        super().validate()
        for step in self.steps():
            step.config.validate()

    def run(self, model=None) -> TourResult:
        return run_tour(self, model)


@dataclass(kw_only=True, repr=False)
class TourResult(Result):
    """The outcome of a tour.

    Attributes:
        steps: step name -> ``{"seconds", "run_dir"}`` or ``{"error", "traceback"}``.
        report: the report page, ``out/report.html`` (None when no step finished).
        page: the report page's HTML, written with the run (None when no step finished).
    """

    main_file = "report.html"
    config: TourConfig
    steps: dict[str, dict] = field(default_factory=dict)
    report: Path | None = None
    page: str | None = None

    def texts(self) -> dict[str, str]:
        return {} if self.page is None else {self.main_file: self.page}

    @property
    def failed(self) -> list[str]:
        return [name for name, info in self.steps.items() if "error" in info]

    def summary(self) -> list[str]:
        lines = []
        for name, info in self.steps.items():
            lines.append(
                f"{name:10s} {info['seconds']:.1f} s" if "seconds" in info else f"{name:10s} FAILED: {info['error']}"
            )
        return lines

    def main_table(self):
        import pandas as pd

        rows = [
            {"step": name, **{k: v for k, v in info.items() if k != "traceback"}} for name, info in self.steps.items()
        ]
        return pd.DataFrame(rows) if rows else None

    @classmethod
    def from_files(cls, config, tables, arrays, record, run_dir) -> TourResult:
        """A saved tour (see :func:`layerscope.load_run`); each step's run loads with ``load_run`` too."""
        from .report_sections import MAX_FILE_BYTES  # pandas

        report = record.get("report")
        page = None
        if report is not None:  # the page as written, read within the report's cap
            page = RunFiles(run_dir).read(cls.main_file, MAX_FILE_BYTES).decode("utf-8", errors="replace")
        return cls(
            config=config,
            steps=dict(record.get("steps") or {}),
            report=None if report is None else Path(report),
            page=page,
            **cls.saved(record),
        )

    def record(self) -> dict:
        return {"steps": self.steps, "failed": self.failed, "report": None if self.report is None else str(self.report)}


def run_tour(config: TourConfig, model=None) -> TourResult:
    """Run every step into ``config.out/<step>`` on one loaded model, then write ``config.out/report.html``."""
    from ..models.loading import given_or_loaded
    from .report import PAGE, ReportConfig

    timings: dict[str, float] = {}
    model = given_or_loaded(config.model, model, timings)
    out = Path(config.out)
    steps: dict[str, dict] = {}
    finished: list[Path] = []
    for step in config.steps(model.n_layers):
        run_dir = out / step.name
        began = time.perf_counter()
        with progress.step(f"Tour: {step.name}" + (f" (seed {step.seed})" if step.seed else "")):
            try:
                if step.prepare is not None:
                    step.prepare()
                execute(step.config, model if step.config.model_specs() else None, out=run_dir)
            except Exception as exc:  # one failed step must not lose the others (Ctrl-C still stops the tour)
                steps[step.name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
                progress.console().print(f"[red]step {step.name} failed:[/red] {type(exc).__name__}: {exc}")
                continue
        steps[step.name] = {"seconds": round(time.perf_counter() - began, 2), "run_dir": str(run_dir)}
        finished.append(run_dir)
    report = page = None
    if finished:
        start = time.perf_counter()
        page = execute(
            ReportConfig(
                run_dirs=tuple(map(str, finished)),
                title=f"layerscope tour: {model.name}",
                model_load_s=timings.get("load"),  # the steps share the model: the header shows its load once
            )
        ).html()
        timings["report"] = time.perf_counter() - start
        report = out / PAGE
    return TourResult(
        config=config, steps=steps, report=report, page=page, models=[model_record(model)], timings=timings
    )


def tour(model: ModelSpec | str | None = None, *, out: str | Path = "runs/tour", quick: bool = False) -> TourResult:
    """Every seed experiment on one model into ``out/<step>``, then ``out/report.html``.

    Example:
        >>> result = layerscope.experiments.tour.tour(quick=True, out="runs/quick")
        >>> result.report
        PosixPath('runs/quick/report.html')
    """
    from ..models import Model

    config = TourConfig(model=ModelSpec.of(model), quick=quick, out=str(out))
    return execute(config, model if isinstance(model, Model) else None, out=out)
