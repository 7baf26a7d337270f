"""``layerscope tokens``: embedding rows of token sets, PCA to 2-D/3-D, interactive plot (seed 000)."""

from __future__ import annotations

from .common import add_model_option, add_out_option, add_token_set_options


def register(sub) -> None:
    parser = sub.add_parser(
        "tokens",
        help="embedding rows of token sets projected with PCA (2-D/3-D)",
        description="Embedding rows of token sets projected with PCA to 2-D or 3-D, as an interactive plot.",
    )
    add_model_option(parser)
    add_token_set_options(parser)
    parser.add_argument("--dims", type=int, default=3, help="2 or 3 (default 3)")
    parser.add_argument("--basis-set", default=None, metavar="SET", help="fit the PCA on this set only, project the rest")
    add_out_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from .. import progress
    from ..experiments.tokens import TokensConfig, default_out, run_tokens, validate
    from ..models import load_model
    from ..tokensets import inline_set

    sets = args.sets or ([] if args.tokens else ["digits", "number-words"])
    config = TokensConfig(
        sets=sets,
        inline=inline_set(args.tokens) if args.tokens is not None else {},
        dims=args.dims,
        basis_set=args.basis_set,
        leading_space=args.leading_space,
        multi_token=args.multi_token,
        model=args.model,
    )
    validate(config)  # before the model loads
    model = load_model(args.model, trust_remote_code=args.trust_remote_code)
    result = run_tokens(config, model)
    out = result.save(args.out or default_out())
    ratio = ", ".join(f"PC{i + 1} {100 * r:.1f}%" for i, r in enumerate(result.explained_variance_ratio))
    progress.console().print(f"{len(result.table)} words, explained variance: {ratio}")
    print(f"{out / 'index.html'}")
    return 0
