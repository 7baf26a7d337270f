"""``layerscope layers``: word categories at every layer, PCA per layer or on one basis (seed 002)."""

from __future__ import annotations

from .common import (
    add_model_option,
    add_out_option,
    add_token_set_options,
    model_specs,
    run_config,
    token_set_fields,
)


def register(sub) -> None:
    parser = sub.add_parser(
        "layers",
        help="token sets at every layer: PCA per layer or on one layer's basis, with separation metrics",
        description=(
            "Capture each word's residual stream at every layer ('embed' = the embedding output, then the output "
            "of each decoder block 0..n-1), project it with PCA (each layer on its own basis, or all on one "
            "layer's basis), and measure how the categories separate. Writes projection.csv, metrics.csv, "
            "index.html (layer slider), grid.png, layers/*.png, metrics.png and run.json."
        ),
    )
    add_model_option(parser, multiple=True)
    add_token_set_options(parser)
    parser.add_argument(
        "--basis",
        default="layer",
        metavar="layer|embedding|LAYER",
        help="'layer': a PCA per layer (default); 'embedding': every layer on the embedding output's "
        "PCA; LAYER: every layer on that layer's PCA (embed, a block such as 6, -1 the last)",
    )
    parser.add_argument("--dims", type=int, default=2, help="2 or 3 principal components (default 2)")
    parser.add_argument(
        "--layers",
        default="all",
        metavar="all|embed,0,6,-1",
        help="layers to show: 'all' (default) or names: 'embed' (the embedding output), block "
        "numbers 0..n-1 (negative from the end: -1 is the last block), 'norm'",
    )
    parser.add_argument(
        "--context",
        default="bos",
        metavar="bos|nobos|TEMPLATE",
        help="each word alone after BOS (default), alone without BOS, or in a template such as 'The word is {word}'",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="words per forward pass (default 64)")
    parser.add_argument(
        "--memory-budget",
        default=None,
        metavar="SIZE",
        help="captures larger than this (e.g. 512MB) stream to a memory-mapped file (default 2GiB)",
    )
    add_out_option(parser)
    parser.set_defaults(func=run)


def config_from_args(args):
    """The :class:`~layerscope.experiments.layers.LayersConfig` the parsed options give."""
    from ..experiments.layers import LayersConfig

    return LayersConfig(
        models=model_specs(args),
        **token_set_fields(args),
        basis=args.basis,
        dims=args.dims,
        layers=args.layers,
        context=args.context,
        batch_size=args.batch_size,
        memory_budget=args.memory_budget,
    )


def run(args) -> int:
    return run_config(config_from_args(args), args.out, args.force)
