"""``layerscope tour``: every seed experiment on one model, gathered into one report page."""

from __future__ import annotations

from .common import add_model_option, add_out_option, model_spec


def register(sub) -> None:
    parser = sub.add_parser(
        "tour",
        help="run every seed experiment on one model and gather them into one report page",
        description="Run every seed experiment on one model, each into its own run directory, then one report page.",
    )
    add_model_option(parser)
    parser.add_argument("--quick", action="store_true", help="smaller prompt sets, for a first look or a test")
    add_out_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from .. import progress
    from ..experiments.tour import TourConfig
    from ..rundir import default_run_dir
    from ..runner import execute

    out = args.out or str(default_run_dir("tour"))
    result = execute(
        TourConfig(model=model_spec(args), quick=args.quick, out=out), out=out, via="cli", force=args.force
    )
    for line in result.summary():
        progress.console().print(f"  {line}")
    if result.report is not None:
        print(result.report)
    return 1 if result.failed else 0
