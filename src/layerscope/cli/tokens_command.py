"""``layerscope tokens``: embedding rows of token sets, PCA to 2-D/3-D, interactive plot (seed 000)."""

from __future__ import annotations

from .common import add_model_option, add_out_option, add_token_set_options, model_spec, run_config, token_set_fields


def register(sub) -> None:
    parser = sub.add_parser(
        "tokens",
        help="embedding rows of token sets projected with PCA (2-D/3-D)",
        description="Embedding rows of token sets projected with PCA to 2-D or 3-D, as an interactive plot.",
    )
    add_model_option(parser)
    add_token_set_options(parser)
    parser.add_argument("--dims", type=int, default=3, help="2 or 3 (default 3)")
    parser.add_argument(
        "--basis-set", default=None, metavar="SET", help="fit the PCA on this set only, project the rest"
    )
    parser.add_argument(
        "--ordered",
        action="append",
        default=None,
        metavar="SET",
        help="a set whose words are in order: a line joins its points (digits, number-words, months always are)",
    )
    add_out_option(parser)
    parser.set_defaults(func=run)


def config_from(args):
    """The :class:`~layerscope.experiments.tokens.TokensConfig` the parsed options give."""
    from ..experiments.tokens import TokensConfig

    return TokensConfig(
        model=model_spec(args),
        **token_set_fields(args),
        dims=args.dims,
        basis_set=args.basis_set,
        ordered=tuple(args.ordered or ()),
    )


def run(args) -> int:
    return run_config(config_from(args), args.out, args.force)
