"""``layerscope stages``: inside an embedding model, embed and every layer, then pooling, Dense and Normalize, with PCA."""

from __future__ import annotations

from .common import add_out_option, run_config
from .encode_command import add_embedding_options, embedding_fields


def register(sub) -> None:
    parser = sub.add_parser(
        "stages",
        help="sentence vectors at every stage of an embedding model (layers, pooling, dense, normalize), PCA per stage",
        description="Sentence vectors at every named stage of an embedding model: embed and each transformer layer "
        "(0, 1, ...; pooled the model's way), then pooling, each Dense and Normalize; PCA per stage, one figure per stage.",
    )
    add_embedding_options(parser)
    parser.add_argument(
        "--prompt-name", default=None, metavar="NAME", help="one of the model's own prompts (e.g. query)"
    )
    parser.add_argument("--dims", type=int, default=2, help="2 or 3 (default 2)")
    add_out_option(parser)
    parser.set_defaults(func=run)


def config_from_args(args):
    from ..experiments.stages import StagesConfig

    return StagesConfig(**embedding_fields(args), prompt_name=args.prompt_name, dims=args.dims)


def run(args) -> int:
    return run_config(config_from_args(args), args.out, args.force)
