"""``layerscope report``: one offline HTML page gathering run directories."""

from __future__ import annotations


def register(sub) -> None:
    parser = sub.add_parser(
        "report",
        help="gather run directories into one self-contained HTML page",
        description="Gather run directories into one self-contained, offline HTML page: figures, numbers, tables, commands.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories written by layerscope commands")
    parser.add_argument("--out", default="report.html", metavar="PAGE", help="the page to write (default report.html)")
    parser.add_argument("--title", default="layerscope report", help="the page title")
    parser.set_defaults(func=run)


def config(args):
    """The :class:`~layerscope.experiments.report.ReportConfig` the arguments give."""
    from ..experiments.report import ReportConfig

    return ReportConfig(run_dirs=tuple(args.runs), out=args.out, title=args.title)


def run(args) -> int:
    from ..experiments.report import execute_report

    _, page = execute_report(config(args), via="cli")
    print(page)
    return 0
