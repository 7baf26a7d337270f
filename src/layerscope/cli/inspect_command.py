"""``layerscope inspect``: one position of some prompts in every layer (seed 001, first half)."""

from __future__ import annotations

from .common import add_model_option, add_out_option, model_spec, model_text, run_config


def register(sub) -> None:
    parser = sub.add_parser(
        "inspect",
        help="heatmaps, similarity, logit lens and layer phases of prompts, layer by layer",
        description=(
            "The residual vector at one position of each prompt at every layer (embed, blocks 0..n-1, norm): "
            "heatmaps, similarity to the expected answer's embedding and between prompts, the logit lens, and "
            "layer phases (3+ prompts)."
        ),
    )
    add_model_option(parser)
    parser.add_argument(
        "--prompt", action="append", dest="prompts", metavar="TEXT", help="a prompt; repeatable (default '5+2=')"
    )
    parser.add_argument("--prompts-file", default=None, metavar="FILE", help="a text file with one prompt per line")
    parser.add_argument("--position", type=int, default=-1, help="token position to read (default -1, the last)")
    parser.add_argument(
        "--target",
        action="append",
        dest="targets",
        metavar="TEXT",
        help="expected answer (one for all prompts or one per prompt); arithmetic prompts like '5+2=' get theirs computed",
    )
    parser.add_argument("--no-bos", action="store_true", help="do not put the BOS token first")
    parser.add_argument("--top-k", type=int, default=5, help="tokens listed per layer by the logit lens (default 5)")
    parser.add_argument(
        "--phases", type=int, default=None, metavar="K", help="number of layer phases (default: chosen)"
    )
    parser.add_argument(
        "--compare-model",
        default=None,
        type=model_text,
        metavar="M",
        help="a second model to compare layer by layer (takes the same --dtype, --device-map, --trust-remote-code)",
    )
    parser.add_argument(
        "--raw", action="store_true", help="heatmap of raw values (default: each layer divided by its RMS)"
    )
    add_out_option(parser)
    parser.set_defaults(func=run)


def config_from_args(args):
    """The :class:`~layerscope.experiments.inspect.InspectConfig` the parsed options give."""
    from ..experiments.inspect import InspectConfig

    return InspectConfig(
        model=model_spec(args),
        prompts=tuple(args.prompts or ()),
        prompts_file=args.prompts_file,
        position=args.position,
        target=tuple(args.targets or ()),
        bos=not args.no_bos,
        top_k=args.top_k,
        phases=args.phases,
        compare_model=None if args.compare_model is None else model_spec(args, args.compare_model),
        raw=args.raw,
    )


def run(args) -> int:
    return run_config(config_from_args(args), args.out, args.force)
