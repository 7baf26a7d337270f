"""``layerscope stages``: inside an embedding model, every layer then pooling, Dense and Normalize, with PCA."""

from __future__ import annotations

from .common import out_dir
from .encode_command import add_embedding_options, read_texts


def register(sub) -> None:
    parser = sub.add_parser(
        "stages",
        help="sentence vectors at every stage of an embedding model (layers, pooling, dense, normalize), PCA per stage",
        description="Sentence vectors at every named stage of an embedding model: each transformer layer (pooled "
        "the model's way), then pooling, each Dense and Normalize; PCA per stage, one figure per stage.",
    )
    parser.add_argument("texts", nargs="*", metavar="TEXT")
    add_embedding_options(parser)
    parser.add_argument("--prompt-name", default=None, metavar="NAME", help="one of the model's own prompts (e.g. query)")
    parser.add_argument("--dims", type=int, default=2, help="2 or 3 (default 2)")
    parser.add_argument("--out", type=out_dir, default=None, metavar="DIR", help="run directory (default runs/stages-<time>)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .. import progress
    from ..experiments.stages import default_out, stages
    from ..models.embedding import load_embedder

    texts = read_texts(args.texts, args.file)
    embedder = load_embedder(args.model, trust_remote_code=args.trust_remote_code)
    result = stages(texts, embedder, prompt_name=args.prompt_name, dims=args.dims, batch_size=args.batch_size)
    out = result.save(args.out or default_out())
    progress.console().print(f"{len(texts)} texts through {len(result.stages.names)} stages: {', '.join(result.stages.names)}")
    print(out / "index.html")
    return 0
