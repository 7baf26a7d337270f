"""``layerscope encode``: sentence embeddings of texts, printed or saved as ``.npy``."""

from __future__ import annotations

from .parser import positive_int


def add_embedding_options(parser) -> None:
    parser.add_argument(
        "--model", default=None, metavar="M",
        help="a sentence-transformers or MLX embedding directory, a cached hub id (default: all-minilm-l6-v2)",
    )
    parser.add_argument("--file", default=None, metavar="TEXTS.txt", help="more texts, one per line")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="texts per forward pass (default 32)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the model repository's own code")


def read_texts(texts: list[str], file: str | None) -> list[str]:
    from pathlib import Path

    from ..errors import LayerscopeError

    texts = list(texts or [])
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise LayerscopeError(f"--file {file!r} does not exist")
        texts += [line.rstrip("\r") for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    if not texts:
        raise LayerscopeError("no texts: give them as arguments or with --file")
    return texts


def register(sub) -> None:
    parser = sub.add_parser(
        "encode",
        help="sentence embeddings of texts (sentence-transformers, EmbeddingGemma, MLX directories)",
        description="Sentence embeddings of texts; printed as a summary, saved with --out as a (n, dim) .npy.",
    )
    parser.add_argument("texts", nargs="*", metavar="TEXT")
    add_embedding_options(parser)
    parser.add_argument("--prompt-name", default=None, metavar="NAME", help="one of the model's own prompts (e.g. query)")
    parser.add_argument("--out", default=None, metavar="VECTORS.npy", help="write the (n, dim) float32 array here")
    parser.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from .. import progress
    from ..atomic import atomic_path
    from ..experiments.encode import encode
    from ..models.embedding import load_embedder

    texts = read_texts(args.texts, args.file)
    embedder = load_embedder(args.model, trust_remote_code=args.trust_remote_code)
    vectors = encode(texts, embedder, prompt_name=args.prompt_name, batch_size=args.batch_size)
    if args.out:
        with atomic_path(args.out) as tmp, open(tmp, "wb") as handle:
            np.save(handle, vectors)
        progress.console().print(f"{vectors.shape[0]} x {vectors.shape[1]} vectors from {embedder.name}")
        print(args.out)
        return 0
    for text, vector in zip(texts, vectors):
        head = " ".join(f"{x:+.4f}" for x in vector[:6])
        print(f"[{head} ...] |v|={np.linalg.norm(vector):.4f}  {text}")
    return 0
