"""``layerscope ablate``: task accuracy with each decoder block removed (seed 001, second half)."""

from __future__ import annotations

from .common import add_model_option, add_out_option, model_spec, run_config
from .parser import positive_int


def register(sub) -> None:
    parser = sub.add_parser(
        "ablate",
        help="task accuracy with decoder blocks removed, one configuration at a time",
        description=(
            "Accuracy on a task (a built-in task, see 'layerscope tasks', or your CSV/JSONL file with "
            "prompt,answer columns) with each "
            "decoder block removed in turn, or the sets given with --drop, against the unablated baseline; "
            "--part attn or mlp removes only the block's attention or MLP. "
            "Interrupted, it resumes when rerun with the same --out."
        ),
    )
    add_model_option(parser)
    parser.add_argument(
        "--task",
        default="arithmetic",
        metavar="NAME|FILE",
        help="a built-in task (arithmetic, boolean, successor, predecessor, capitals, copying, antonyms; "
        "'layerscope tasks' lists them) or a .csv/.jsonl file with prompt and answer (and group)",
    )
    parser.add_argument(
        "--n",
        type=positive_int,
        default=None,
        help="number of items (arithmetic default: every distinct problem, at most 1000; other built-in "
        "tasks: their default; a file: all its rows)",
    )
    parser.add_argument(
        "--shots",
        type=int,
        default=None,
        metavar="K",
        help="worked examples before each prompt of a built-in task (default: the task's own)",
    )
    parser.add_argument("--ops", default="+-*/", help="arithmetic operations (default '+-*/')")
    parser.add_argument("--digits", type=int, default=1, help="digits per arithmetic operand, 1 to 3 (default 1)")
    parser.add_argument("--allow-negative", action="store_true", help="allow negative subtraction results")
    parser.add_argument(
        "--inexact-division",
        action="store_true",
        help="allow division with a remainder (the answer is the integer quotient)",
    )
    parser.add_argument("--duplicates", action="store_true", help="allow a problem to appear more than once")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the task generator and of the bootstrap intervals (default 0)"
    )
    parser.add_argument(
        "--drop",
        action="append",
        default=None,
        metavar="LAYERS",
        help="decoder blocks removed together (block k outputs the layer named k), e.g. 4 or 4,5 or 2-5; "
        "repeatable (default: each block alone)",
    )
    parser.add_argument(
        "--part",
        default="block",
        metavar="block|attn|mlp|all",
        help="what is removed of each block: block (default), attn or mlp (only its attention or MLP contribution "
        "to the residual stream, post-norms included); several, e.g. attn,mlp or all, give one curve per part",
    )
    parser.add_argument(
        "--scoring",
        default=None,
        choices=["first", "answer", "greedy"],
        help="first: the answer's first token; answer: the whole answer under greedy decoding ('greedy' is the "
        "same); default: answer when some answer has several tokens, else first",
    )
    parser.add_argument("--batch-size", type=positive_int, default=64, help="prompts per forward pass (default 64)")
    add_out_option(parser)
    parser.set_defaults(func=run)


def config_from(args, resume_dir: str | None = None):
    """The :class:`~layerscope.experiments.ablate.AblateConfig` the parsed options give."""
    from ..experiments.ablate import AblateConfig

    return AblateConfig(
        model=model_spec(args),
        task=args.task,
        n=args.n,
        shots=args.shots,
        ops=args.ops,
        digits=args.digits,
        allow_negative=args.allow_negative,
        inexact_division=args.inexact_division,
        duplicates=args.duplicates,
        seed=args.seed,
        drop=tuple(args.drop or ()),
        part=args.part,
        scoring=args.scoring,
        batch_size=args.batch_size,
        resume_dir=resume_dir,
    )


def run(args) -> int:
    from ..rundir import default_run_dir

    out = args.out or str(default_run_dir("ablate"))  # the run directory keeps the finished configurations
    return run_config(config_from(args, resume_dir=out), out, args.force)
