"""``layerscope layers``: word categories at every layer, PCA per layer or on one basis (seed 002)."""

from __future__ import annotations

from .common import add_model_option, add_out_option, add_token_set_options
from .parser import positive_int


def register(sub) -> None:
    parser = sub.add_parser(
        "layers",
        help="token sets at every layer: PCA per layer or on one layer's basis, with separation metrics",
        description=(
            "Capture each word's residual stream at every layer (layer 0 = embedding output), project it with "
            "PCA (each layer on its own basis, or all on one layer's basis), and measure how the categories "
            "separate. Writes projection.csv, metrics.csv, index.html (layer slider), grid.png, layers/*.png, "
            "metrics.png and run.json."
        ),
    )
    add_model_option(parser, multiple=True)
    add_token_set_options(parser)
    parser.add_argument("--basis", default="layer", metavar="layer|embedding|N",
                        help="'layer': a PCA per layer (default); 'embedding': every layer on layer 0's PCA; "
                             "N: every layer on layer N's PCA (negative from the end)")
    parser.add_argument("--dims", type=int, default=2, help="2 or 3 principal components (default 2)")
    parser.add_argument("--layers", default="all", metavar="all|0,1,6,-1",
                        help="layers to show: 'all' (default) or indices; 0 is the embedding output, -1 the last layer")
    parser.add_argument("--context", default="bos", metavar="bos|nobos|TEMPLATE",
                        help="each word alone after BOS (default), alone without BOS, or in a template "
                             "such as 'The word is {word}'")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="words per forward pass (default 64)")
    parser.add_argument("--memory-budget", default=None, metavar="SIZE",
                        help="captures larger than this (e.g. 512MB) stream to a memory-mapped file (default 2GiB)")
    add_out_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from .. import progress
    from ..capture import parse_budget
    from ..experiments.layers import LayersConfig, check_config, default_out, run_layers
    from ..tokensets import inline_set

    sets = args.sets or ([] if args.tokens else ["categories"])
    config = LayersConfig(
        models=args.models or [None],
        sets=sets,
        inline=inline_set(args.tokens) if args.tokens is not None else {},
        dims=args.dims,
        basis=args.basis,
        layers=args.layers,
        context=args.context,
        leading_space=args.leading_space,
        multi_token=args.multi_token,
        batch_size=args.batch_size,
        memory_budget=parse_budget(args.memory_budget) if args.memory_budget is not None else None,
        trust_remote_code=args.trust_remote_code,
    )
    check_config(config)  # fail on bad input before any model loads
    result = run_layers(config)  # loads the models one at a time
    out = result.save(args.out or default_out())
    for model, rows in result.metrics.groupby("model", sort=False):
        best = rows.loc[rows["silhouette"].idxmax()] if rows["silhouette"].notna().any() else None
        note = f", best separated at layer {best['layer']} (silhouette {best['silhouette']:.2f})" if best is not None else ""
        progress.console().print(f"{model}: {len(rows)} layers{note}")
    print(f"{out / 'index.html'}")
    return 0
