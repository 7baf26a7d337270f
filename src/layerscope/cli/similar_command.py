"""``layerscope similar``: rank texts by cosine similarity to a query."""

from __future__ import annotations

from .encode_command import add_embedding_options, read_texts


def register(sub) -> None:
    parser = sub.add_parser(
        "similar",
        help="rank texts by cosine similarity to a query",
        description="Rank texts by cosine similarity to a query; the model's own query/document prompts are used "
        "when it defines them.",
    )
    parser.add_argument("texts", nargs="*", metavar="TEXT")
    parser.add_argument("--query", required=True, metavar="Q", help="the query text")
    add_embedding_options(parser)
    parser.add_argument("--query-prompt", default="auto", metavar="NAME", help="prompt name for the query ('none' for none)")
    parser.add_argument("--document-prompt", default="auto", metavar="NAME", help="prompt name for the texts ('none' for none)")
    parser.add_argument("--json", action="store_true", help="print the ranking as JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..experiments.encode import similar
    from ..models.embedding import load_embedder

    texts = read_texts(args.texts, args.file)
    embedder = load_embedder(args.model, trust_remote_code=args.trust_remote_code)
    table = similar(
        args.query, texts, embedder,
        query_prompt=None if args.query_prompt == "none" else args.query_prompt,
        document_prompt=None if args.document_prompt == "none" else args.document_prompt,
        batch_size=args.batch_size,
    )
    if args.json:
        print(table.to_json(orient="records", indent=2))
    else:
        for row in table.itertuples():
            print(f"{row.rank:>3}  {row.cosine:+.4f}  {row.text}")
    return 0
