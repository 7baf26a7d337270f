"""``layerscope ablate``: task accuracy with each decoder layer removed (seed 001, second half)."""

from __future__ import annotations

from .common import add_model_option, add_out_option
from .parser import positive_int


def register(sub) -> None:
    parser = sub.add_parser(
        "ablate",
        help="task accuracy with decoder layers removed, one configuration at a time",
        description=(
            "Accuracy on a task (arithmetic, or your CSV/JSONL file with prompt,answer columns) with each "
            "decoder layer removed in turn, or the sets given with --drop, against the unablated baseline. "
            "Interrupted, it resumes when rerun with the same --out."
        ),
    )
    add_model_option(parser)
    parser.add_argument("--task", default="arithmetic", metavar="arithmetic|FILE",
                        help="'arithmetic' (generated) or a .csv/.jsonl file with prompt and answer (and group)")
    parser.add_argument("--n", type=positive_int, default=None,
                        help="number of items (arithmetic default: every distinct problem, at most 1000)")
    parser.add_argument("--ops", default="+-*/", help="arithmetic operations (default '+-*/')")
    parser.add_argument("--digits", type=int, default=1, help="digits per arithmetic operand, 1 to 3 (default 1)")
    parser.add_argument("--allow-negative", action="store_true", help="allow negative subtraction results")
    parser.add_argument("--inexact-division", action="store_true",
                        help="allow division with a remainder (the answer is the integer quotient)")
    parser.add_argument("--duplicates", action="store_true", help="allow a problem to appear more than once")
    parser.add_argument("--seed", type=int, default=0, help="seed of the arithmetic generator (default 0)")
    parser.add_argument("--drop", action="append", default=None, metavar="LAYERS",
                        help="layers removed together, e.g. 4 or 4,5 or 2-5; repeatable (default: each layer alone)")
    parser.add_argument("--scoring", default="first", choices=["first", "greedy"],
                        help="first: the answer's first token (default); greedy: the whole answer")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="prompts per forward pass (default 64)")
    add_out_option(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from .. import progress
    from ..experiments.ablate import AblateConfig, build_task, default_out, parse_drop, run_ablate
    from ..models import load_model

    config = AblateConfig(
        task=args.task, n=args.n, ops=args.ops, digits=args.digits, non_negative=not args.allow_negative,
        exact_division=not args.inexact_division, duplicates=args.duplicates, seed=args.seed,
        drop=list(args.drop or []), scoring=args.scoring, batch_size=args.batch_size, model=args.model,
    )
    for spec in config.drop:  # validate the input before the model loads
        parse_drop(spec)
    build_task(config)
    model = load_model(args.model, trust_remote_code=args.trust_remote_code)
    out = args.out or default_out()
    result = run_ablate(config, model, out=out)
    result.save(out)
    table = result.accuracy
    worst = table[table["config"] != "baseline"].nsmallest(3, "accuracy")
    base = table.loc[table["config"] == "baseline", "accuracy"].iloc[0]
    summary = ", ".join(f"{r.config} {r.accuracy:.3f}" for r in worst.itertuples())
    progress.console().print(f"{int(table['n'].iloc[0])} items, baseline accuracy {base:.3f}; lowest: {summary}")
    print(f"{out}/accuracy.html")
    return 0
