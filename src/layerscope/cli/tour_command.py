"""``layerscope tour``: every seed experiment on one model, gathered into one report page."""

from __future__ import annotations

import dataclasses

from .. import progress
from ..rundir import default_run_dir
from ..runner import execute

HELP = "run every seed experiment on one model and gather them into one report page"
DESCRIPTION = "Run every seed experiment on one model, each into its own run directory, then one report page."


def run(config, args) -> int:

    out = args.out or str(default_run_dir("tour"))
    result = execute(dataclasses.replace(config, out=out), out=out, via="cli", force=args.force)
    for line in result.summary():
        progress.console().print(f"  {line}")
    if result.report is not None:
        print(result.report)
    return 1 if result.failed else 0
