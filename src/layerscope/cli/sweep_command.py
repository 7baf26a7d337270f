"""``layerscope sweep EXPERIMENT --model A --model B ...``: one experiment over many models, on Ray when installed.

Each experiment's own options come from its own command's parser (``cli/<experiment>_command.py``): the
sweep registers that parser again under ``sweep``, makes ``--model`` repeatable and adds the sweep's options.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .common import MODEL_HELP, model_specs, model_text
from .parser import Parser, positive_int

#: the experiments a sweep runs (each command module builds its config from the parsed options)
SWEPT = ("echo", "layers", "ablate", "tokens", "inspect")


def register(sub) -> None:
    parser = sub.add_parser(
        "sweep",
        help="one experiment over many models (on Ray when installed): a run per model and a merged table",
        description=(
            "Run one experiment (echo, layers, ablate, tokens, inspect) on every --model: each model's run "
            "directory under --out, then one merged table per table of the experiment, sweep.csv (status per "
            "model: ok, failed with its reason, skipped when finished before) and a figure across models. On "
            "Ray each model is a task asking for the memory its forward pass needs; without Ray (or --no-ray) "
            "the models run one after another. A rerun skips the models already finished."
        ),
    )
    experiments = parser.add_subparsers(dest="sweep_experiment", metavar="EXPERIMENT", parser_class=_SweepParser)
    for name in SWEPT:
        importlib.import_module(f"{__package__}.{name}_command").register(experiments)
        _sweep_options(experiments.choices[name], name)
    parser.set_defaults(func=_no_experiment)


class _SweepParser(Parser):
    """An experiment's parser under ``sweep``: an option added again replaces the experiment's own (``--model``
    becomes repeatable, whatever it is in the experiment's command)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("conflict_handler", "resolve")
        super().__init__(*args, **kwargs)


def _sweep_options(parser, name: str) -> None:
    parser.add_argument(
        "--model", action="append", dest="models", type=model_text, metavar="M", help=MODEL_HELP + "; repeatable"
    )
    group = parser.add_argument_group("sweep")
    group.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="an existing Ray cluster (HOST:PORT or ray://HOST:PORT); default: a local Ray instance",
    )
    group.add_argument("--no-ray", action="store_true", help="run the models one after another in this process")
    group.add_argument(
        "--num-cpus", type=positive_int, default=None, metavar="N", help="CPUs of the local Ray instance (default: all)"
    )
    group.add_argument(
        "--memory-per-model",
        default=None,
        metavar="SIZE",
        help="memory each model's Ray task asks for (e.g. 8GB) instead of the estimate from its checkpoint",
    )
    for flag, text in (("--debug", "show full tracebacks (for bug reports)"), ("--quiet", "no progress output")):
        parser.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=text)
    parser.set_defaults(func=run, sweep_experiment=name)


def _no_experiment(args) -> int:
    from .parser import UsageExit

    raise UsageExit(f"layerscope sweep: give an experiment: {', '.join(SWEPT)}")


def config_from_args(args):
    """The :class:`~layerscope.experiments.sweep.SweepConfig` the options give: the experiment's config from its
    own command's options (its model left at the default), and the models of ``--model``."""
    from ..experiments.sweep import SweepConfig

    module = importlib.import_module(f"{__package__}.{args.sweep_experiment}_command")
    make = getattr(module, "config_from_args", None) or module.config_from
    models = args.models
    args.models, args.model, args.compare_model = None, None, getattr(args, "compare_model", None)
    base = make(args)
    args.models = models
    return SweepConfig(
        base=base,
        models=model_specs(args),
        ray_address=args.ray_address,
        use_ray=not args.no_ray,
        num_cpus=args.num_cpus,
        memory_per_model=args.memory_per_model,
    )


def run(args) -> int:
    """Run the sweep, print each model's status and the page; a failed model gives one line and exit code 2."""
    from .. import progress
    from ..experiments.sweep import failure_line
    from ..rundir import default_run_dir
    from ..runner import execute

    config = config_from_args(args)
    out = Path(args.out) if args.out else default_run_dir("sweep")
    result = execute(config, out=out, via="cli", force=args.force)
    for line in result.summary():
        progress.console().print(line)
    print(out / result.main_file)
    line = failure_line(result)
    if line:
        print(f"layerscope: error: sweep: {line}", file=sys.stderr)
        return 2
    return 0
