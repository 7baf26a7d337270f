"""``layerscope report``: one offline HTML page gathering run directories, in a run directory of its own."""

from __future__ import annotations

import argparse

from ..errors import LayerscopeError
from ..experiments.report_config import check_out
from .common import add_out_option, out_dir

HELP = "gather run directories into one self-contained HTML page"
DESCRIPTION = (
    "Gather run directories into one self-contained, offline HTML page (figures, numbers, tables, commands), "
    "written as --out/report.html."
)


def _report_dir(text: str) -> str:
    """``--out DIR``: a directory, never a page name (the page is ``DIR/report.html``)."""
    try:
        check_out(text)
    except LayerscopeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return out_dir(text)


def add_run_options(parser) -> None:
    add_out_option(parser, check=_report_dir)
