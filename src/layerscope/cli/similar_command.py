"""``layerscope similar``: rank texts by cosine similarity to a query."""

from __future__ import annotations

from .common import add_out_option
from .encode_command import add_embedding_options, embedding_fields


def register(sub) -> None:
    parser = sub.add_parser(
        "similar",
        help="rank texts by cosine similarity to a query",
        description="Rank texts by cosine similarity to a query; the model's own query/document prompts are used "
        "when it defines them.",
    )
    parser.add_argument("--query", required=True, metavar="Q", help="the query text")
    add_embedding_options(parser)
    parser.add_argument(
        "--query-prompt", default="auto", metavar="NAME", help="prompt name for the query ('none' for none)"
    )
    parser.add_argument(
        "--document-prompt", default="auto", metavar="NAME", help="prompt name for the texts ('none' for none)"
    )
    parser.add_argument("--json", action="store_true", help="print the ranking as JSON")
    add_out_option(parser)
    parser.set_defaults(func=run)


def config_from_args(args):
    from ..experiments.encode import SimilarConfig

    return SimilarConfig(
        **embedding_fields(args),
        query=args.query,
        query_prompt=args.query_prompt,
        document_prompt=args.document_prompt,
    )


def run(args) -> int:
    """Print the ranking (``--json``: as JSON); with ``--out`` also write the run directory."""
    from ..runner import execute

    result = execute(config_from_args(args), out=args.out, via="cli", force=args.force)
    print(result.to_json() if args.json else "\n".join(result.lines()))
    return 0
