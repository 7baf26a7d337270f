"""``layerscope echo``: one token in, what comes out, with and without BOS, across models (seed 004)."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import add_model_option, add_out_option, add_set_options, model_specs
from .parser import int_at_least, positive_int


def register(sub) -> None:
    parser = sub.add_parser(
        "echo",
        help="feed single words with and without BOS: does the model repeat the word?",
        description=(
            "Feed each word alone (with and without BOS) to one or more models and record the next-token "
            "distribution: top-k, the probability and rank of the word itself, and the echo rate per model. "
            "Free prompts are completed greedily with and without BOS. Models are loaded one at a time."
        ),
    )
    add_model_option(parser, multiple=True)
    parser.add_argument("file", nargs="?", default=None, metavar="FILE", help="a JSON/YAML/text file of words")
    add_set_options(parser, examples="default echo-words; categories, months, ...")
    parser.add_argument(
        "--no-leading-space", dest="leading_space", action="store_false", help="feed 'John' rather than ' John'"
    )
    parser.add_argument(
        "--bos", default="both", choices=["both", "without", "with"], help="BOS settings (default both)"
    )
    parser.add_argument("--top-k", type=positive_int, default=5, metavar="K", help="next tokens recorded (default 5)")
    parser.add_argument(
        "--prompt", action="append", dest="prompts", metavar="TEXT", help="a free prompt to complete; repeatable"
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int_at_least(0),
        default=8,
        metavar="N",
        help="tokens per completion (default 8; 0: none)",
    )
    parser.add_argument("--batch-size", type=positive_int, default=64, metavar="B", help="inputs per forward pass")
    add_out_option(parser)
    parser.set_defaults(func=run)


def config_from_args(args):
    """The :class:`~layerscope.experiments.echo.EchoConfig` the options give (the word file is one more set)."""
    from ..experiments.echo import DEFAULT_PROMPT, EchoConfig
    from ..tokensets.options import inline_words

    return EchoConfig(
        models=model_specs(args),
        sets=tuple(args.sets or ()) + ((args.file,) if args.file else ()),
        tokens=inline_words(args.tokens),
        leading_space=args.leading_space,
        bos=args.bos,
        top_k=args.top_k,
        prompts=tuple(args.prompts or (DEFAULT_PROMPT,)),
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
    )


def run(args) -> int:
    """Run, write ``--out``, print the summary and the page; a model that failed is one error line (exit 2)."""
    from .. import progress
    from ..rundir import default_run_dir
    from ..runner import execute

    config = config_from_args(args)
    out = Path(args.out) if args.out else default_run_dir(config.experiment)
    result = execute(config, out=out, via="cli", force=args.force)
    for line in result.summary():
        progress.console().print(line)
    print(out / result.main_file)
    for message in result.failures.values():
        print(f"layerscope: error: {message}", file=sys.stderr)
    return 2 if result.failures else 0
