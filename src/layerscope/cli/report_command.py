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


def run(args) -> int:
    from ..experiments.report import build_report

    print(build_report(args.runs, args.out, args.title))
    return 0
