"""``layerscope compare``: models and quantizations side by side, layer by layer."""

from __future__ import annotations

from .common import add_model_option, add_out_option, add_set_options, model_specs, run_config


def register(sub) -> None:
    parser = sub.add_parser(
        "compare",
        help="compare models (any families) and formats of one model, layer by layer",
        description=(
            "Run the same words or prompts through two or more models, read the last token of each at every "
            "layer, and compare: linear and debiased CKA between every layer of each pair (heatmaps, best "
            "matches), and against the reference (the first model) where depth, width and tokenization agree: "
            "relative error and cosine per layer, next-token top-1 agreement and KL (prompts), per-tensor weight "
            "error (checkpoints of one architecture)."
        ),
    )
    add_model_option(parser, multiple=True)
    add_set_options(parser)
    parser.add_argument("--leading-space", action="store_true", help="tokenize ' word' instead of 'word'")
    parser.add_argument(
        "--prompt", action="append", dest="prompts", metavar="TEXT", help="a prompt instead of words; repeatable"
    )
    parser.add_argument("--prompts-file", default=None, metavar="FILE", help="a text file with one prompt per line")
    parser.add_argument(
        "--context",
        default="bos",
        metavar="bos|nobos|TEMPLATE",
        help="each word alone after BOS (default), alone without BOS, or in a template such as 'The word is {word}'",
    )
    parser.add_argument("--no-bos", action="store_true", help="do not put the BOS token before each prompt")
    parser.add_argument(
        "--reference",
        default=None,
        metavar="NAME",
        help="the model the others are measured against: a NAME of --model NAME=SOURCE or a source (default: the first)",
    )
    parser.add_argument("--no-weights", action="store_true", help="do not compare the checkpoints' tensors")
    parser.add_argument("--batch-size", type=int, default=32, help="inputs per forward pass (default 32)")
    add_out_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..experiments.compare import CompareConfig
    from ..tokensets.options import inline_words

    config = CompareConfig(
        models=model_specs(args) if args.models else (),
        sets=tuple(args.sets or ()),
        tokens=inline_words(args.tokens),
        leading_space=args.leading_space,
        prompts=tuple(args.prompts or ()),
        prompts_file=args.prompts_file,
        context=args.context,
        bos=not args.no_bos,
        reference=args.reference,
        weights=not args.no_weights,
        batch_size=args.batch_size,
    )
    return run_config(config, args.out, args.force)
