"""``layerscope similar``: rank texts by cosine similarity to a query."""

from __future__ import annotations

from ..runner import execute
from .common import add_out_option

HELP = "rank texts by cosine similarity to a query"
DESCRIPTION = (
    "Rank texts by cosine similarity to a query; the model's own query/document prompts are used when it defines them."
)


def add_run_options(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print the ranking as JSON")
    add_out_option(parser)


def run(config, args) -> int:
    """Print the ranking (``--json``: as JSON); with ``--out`` also write the run directory."""
    result = execute(config, out=args.out, via="cli", force=args.force)
    print(result.to_json() if args.json else "\n".join(result.lines()))
    return 0
