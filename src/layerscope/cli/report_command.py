"""``layerscope report``: one offline HTML page gathering run directories."""

from __future__ import annotations

HELP = "gather run directories into one self-contained HTML page"
DESCRIPTION = "Gather run directories into one self-contained, offline HTML page: figures, numbers, tables, commands."


def add_run_options(parser) -> None:
    """None: ``--out`` (the page) is the config's own."""


def run(config, args) -> int:
    from ..experiments.report import execute_report

    _, page = execute_report(config, via="cli")
    print(page)
    return 0
