"""``layerscope tour``: every seed experiment on one model, gathered into one report page."""

from __future__ import annotations

from .common import add_model_option, add_out_option


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
    from ..experiments.tour import run_tour
    from ..models import load_model
    from ..rundir import default_run_dir

    model = load_model(args.model, trust_remote_code=args.trust_remote_code)
    summary = run_tour(args.model, args.out or default_run_dir("tour"), quick=args.quick, model=model)
    for name, info in summary["steps"].items():
        state = f"{info['seconds']:.1f} s" if "seconds" in info else f"FAILED: {info['error']}"
        progress.console().print(f"  {name:10s} {state}")
    progress.console().print(f"tour finished in {summary['total_s']:.0f} s")
    if "report" in summary:
        print(summary["report"])
    return 1 if summary["failed"] else 0
