"""``layerscope encode``: sentence embeddings of texts, printed or saved as ``.npy``."""

from __future__ import annotations

from .common import model_text
from .parser import positive_int


def add_embedding_options(parser) -> None:
    """``TEXT...``, ``--model``, ``--file``, ``--batch-size``, ``--trust-remote-code`` (every embedding command)."""
    parser.add_argument("texts", nargs="*", metavar="TEXT")
    parser.add_argument(
        "--model",
        default=None,
        type=model_text,
        metavar="M",
        help="a sentence-transformers or MLX embedding directory, a cached hub id, or 'default' (all-minilm-l6-v2, "
        "offline; the default); NAME=SOURCE names it in tables and reports",
    )
    parser.add_argument("--file", default=None, metavar="TEXTS.txt", help="more texts, one per line")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="texts per forward pass (default 32)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the model repository's own code")


def embedding_fields(args) -> dict:
    """The :class:`~layerscope.experiments.encode.EmbeddingConfig` fields the options give."""
    from ..model_spec import ModelSpec, split_named_source

    name, source = (None, None) if args.model is None else split_named_source(args.model)
    return {
        "texts": tuple(args.texts or ()),
        "file": args.file,
        "model": ModelSpec(source=source, name=name, trust_remote_code=args.trust_remote_code),
        "batch_size": args.batch_size,
    }


def register(sub) -> None:
    parser = sub.add_parser(
        "encode",
        help="sentence embeddings of texts (sentence-transformers, EmbeddingGemma, MLX directories)",
        description="Sentence embeddings of texts; printed as a summary, saved with --out as a (n, dim) .npy.",
    )
    add_embedding_options(parser)
    parser.add_argument(
        "--prompt-name", default=None, metavar="NAME", help="one of the model's own prompts (e.g. query)"
    )
    parser.add_argument("--out", default=None, metavar="VECTORS.npy", help="write the (n, dim) float32 array here")
    parser.set_defaults(func=run)


def config_from_args(args):
    from ..experiments.encode import EncodeConfig

    return EncodeConfig(**embedding_fields(args), prompt_name=args.prompt_name)


def run(args) -> int:
    """Print one line per text, or with ``--out`` write the array there and print its path."""
    from .. import progress
    from ..runner import execute

    result = execute(config_from_args(args), via="cli")
    if args.out:
        path = result.save_vectors(args.out)
        for line in result.summary():
            progress.console().print(line)
        print(path)
        return 0
    for line in result.lines():
        print(line)
    return 0
