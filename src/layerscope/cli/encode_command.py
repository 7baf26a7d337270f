"""``layerscope encode``: sentence embeddings of texts, printed or saved as ``.npy``."""

from __future__ import annotations

from .. import progress
from ..runner import execute

HELP = "sentence embeddings of texts (sentence-transformers, EmbeddingGemma, MLX directories)"
DESCRIPTION = "Sentence embeddings of texts; printed as a summary, saved with --out as a (n, dim) .npy."


def add_run_options(parser) -> None:
    parser.add_argument("--out", default=None, metavar="VECTORS.npy", help="write the (n, dim) float32 array here")


def run(config, args) -> int:
    """Print one line per text, or with ``--out`` write the array there and print its path."""
    result = execute(config, via="cli")
    if args.out:
        path = result.save_vectors(args.out)
        for line in result.summary():
            progress.console().print(line)
        print(path)
        return 0
    for line in result.lines():
        print(line)
    return 0
