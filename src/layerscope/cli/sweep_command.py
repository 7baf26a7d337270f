"""``layerscope sweep EXPERIMENT --model A --model B ...``: one experiment over many models, on Ray when installed.

Each experiment's options are generated from its config, as for its own command, without its model (the
sweep's repeatable ``--model`` gives them); the sweep's options from :class:`SweepConfig`'s fields.
"""

from __future__ import annotations

import argparse
import sys

from ..registry import ENTRIES, swept
from . import declared
from .common import add_out_option, run_config
from .parser import Parser, UsageExit

HELP = "one experiment over many models (on Ray when installed): a run per model and a merged table"


def register(sub) -> None:
    from ..experiments.sweep import SweepConfig

    names = [e.name for e in swept("cli")]
    parser = sub.add_parser(
        "sweep",
        help=HELP,
        description=(
            f"Run one experiment ({', '.join(names)}) on every --model: each model's run "
            "directory under --out, then one merged table per table of the experiment, sweep.csv (status per "
            "model: ok, failed with its reason, skipped when finished before) and a figure across models. On "
            "Ray each model is a task asking for the memory its forward pass needs; without Ray (or --no-ray) "
            "the models run one after another. A rerun skips the models already finished."
        ),
    )
    experiments = parser.add_subparsers(dest="sweep_experiment", metavar="EXPERIMENT", parser_class=Parser)
    for name in names:
        module = declared.command_module(name)
        config_class = ENTRIES[name].config_class()
        command = experiments.add_parser(name, help=module.HELP, description=module.DESCRIPTION)
        declared.add_config_options(command, config_class, skip=declared.model_fields(config_class))
        declared.add_config_options(command.add_argument_group("sweep"), SweepConfig)
        add_out_option(command)
        for flag, text in (("--debug", "show full tracebacks (for bug reports)"), ("--quiet", "no progress output")):
            command.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=text)
        command.set_defaults(func=run, sweep_experiment=name)
    parser.set_defaults(func=_no_experiment)


def _no_experiment(args) -> int:

    raise UsageExit(f"layerscope sweep: give an experiment: {', '.join(e.name for e in swept('cli'))}")


def config_from_args(args):
    """The :class:`~layerscope.experiments.sweep.SweepConfig` the options give: the experiment's config from its
    options (its model left at the default), and the models of ``--model``."""
    from ..experiments.sweep import SweepConfig

    config_class = ENTRIES[args.sweep_experiment].config_class()
    base = declared.config_from_args(config_class, args, skip=declared.model_fields(config_class))
    return declared.config_from_args(SweepConfig, args, base=base)


def run(args) -> int:
    """Run the sweep, print each model's status and the page; a failed model gives one line and exit code 2."""
    from ..experiments.sweep import failure_line

    result = run_config(config_from_args(args), args.out, args.force)
    line = failure_line(result)
    if line:
        print(f"layerscope: error: sweep: {line}", file=sys.stderr)
        return 2
    return 0
