"""``layerscope tour``: every seed experiment on one model, each as its own run directory, then one report.

Each step is the same call a user would make (the Python API of that command) and records the
command line that reproduces it in its ``run.json``. A step that fails is reported and the others
still run; the report gathers whatever finished.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import progress
from ..atomic import write_json
from ..models import Model, load_model

ARITHMETIC_PROMPTS = [
    "5+2=", "3+4=", "2+5=", "9-2=", "8-1=", "2*3=", "3*3=", "8/4=", "6/2=", "1+1=", "4+4=", "7-3=",
    "9-5=", "2*4=", "9/3=", "0+6=",
]


@dataclass(frozen=True)
class Step:
    """One experiment of the tour.

    Attributes:
        name: the run directory's name under the tour directory.
        seed: which seed document it reproduces.
        argv: ``argv(quick, source)`` the equivalent command line without ``--out`` (``source`` is the
            model source, None for the default model).
        run: ``run(model, out_dir, quick)`` writes the run directory.
    """

    name: str
    seed: str
    argv: Callable[[bool, str | None], list[str]]
    run: Callable[[Model, Path, bool], object]


def _tokens(model: Model, out: Path, quick: bool):
    from .tokens import tokens

    return tokens(["digits", "number-words"], model=model, dims=3, out=out)


def _layers(model: Model, out: Path, quick: bool):
    from .layers import layers

    return layers("categories", model=model, basis="layer", layers=LAYERS_QUICK if quick else "all", out=out)


LAYERS_QUICK = "0,1,6,-1"


def _inspect(model: Model, out: Path, quick: bool):
    from .inspect import inspect

    prompts = ARITHMETIC_PROMPTS[:6] if quick else ARITHMETIC_PROMPTS
    return inspect(prompts, model=model, out=out)


def _model_args(source: str | None) -> list[str]:
    return [] if source in (None, "default") else ["--model", source]


def _inspect_argv(quick: bool, source: str | None) -> list[str]:
    prompts = ARITHMETIC_PROMPTS[:6] if quick else ARITHMETIC_PROMPTS
    return ["inspect", *[arg for p in prompts for arg in ("--prompt", p)], *_model_args(source)]


ABLATE_N = {True: 40, False: 200}


def _ablate(model: Model, out: Path, quick: bool):
    from .ablate import ablate

    return ablate("arithmetic", model=model, n=ABLATE_N[quick], out=out)


def _echo(model: Model, out: Path, quick: bool):
    from .echo import echo

    return echo("echo-words", models=model, out=out)


def _layout(model: Model, out: Path, quick: bool):
    from .layout import layout

    return layout(_layout_source(model)).save(out)


def _layout_source(model: Model) -> str:
    """The file behind the model: the default model's GGUF, else the source as given."""
    return "default" if model.source == "default" else model.source


STEPS: list[Step] = [
    Step(
        "tokens", "000",
        lambda quick, source: ["tokens", "--set", "digits", "--set", "number-words", "--dims", "3", *_model_args(source)],
        _tokens,
    ),
    Step(
        "layers", "002",
        lambda quick, source: [
            "layers", "--set", "categories", "--basis", "layer", "--layers", LAYERS_QUICK if quick else "all",
            *_model_args(source),
        ],
        _layers,
    ),
    Step("inspect", "001", _inspect_argv, _inspect),
    Step(
        "ablate", "001",
        lambda quick, source: ["ablate", "--task", "arithmetic", "--n", str(ABLATE_N[quick]), *_model_args(source)],
        _ablate,
    ),
    Step("echo", "004", lambda quick, source: ["echo", *_model_args(source)], _echo),
    Step("layout", "003", lambda quick, source: ["layout", source or "default"], _layout),
]


def _record_command(run_dir: Path, argv: list[str]) -> None:
    """Put the command that reproduces this run into its ``run.json``."""
    path = run_dir / "run.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    record["command"] = ["layerscope", *argv, "--out", str(run_dir)]
    write_json(path, record)


def run_tour(model_source: str | None, out: str | Path, *, quick: bool = False, model: Model | None = None) -> dict:
    """Run every step into ``out/<step>``, then write ``out/report.html``; returns a summary dict.

    Example:
        >>> summary = run_tour(None, "runs/tour", quick=True)
        >>> summary["report"]
        'runs/tour/report.html'
    """
    from .report import build_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model = model or load_model(model_source)
    summary: dict = {"model": model.name, "quick": quick, "steps": {}, "failed": []}
    summary["load_s"] = round(time.perf_counter() - start, 2)
    finished = []
    for step in STEPS:
        run_dir = out / step.name
        began = time.perf_counter()
        with progress.step(f"Tour: {step.name} (seed {step.seed})"):
            try:
                step.run(model, run_dir, quick)
                _record_command(run_dir, step.argv(quick, None if model.source == "default" else model.source))
            except Exception as exc:  # one failed step must not lose the others
                summary["failed"].append(step.name)
                summary["steps"][step.name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
                progress.console().print(f"[red]step {step.name} failed:[/red] {type(exc).__name__}: {exc}")
                continue
        summary["steps"][step.name] = {"seconds": round(time.perf_counter() - began, 2), "run_dir": str(run_dir)}
        finished.append(run_dir)
    if finished:
        report = build_report(finished, out / "report.html", title=f"layerscope tour: {model.name}")
        summary["report"] = str(report)
    summary["total_s"] = round(time.perf_counter() - start, 2)
    write_json(out / "tour.json", summary)
    return summary
