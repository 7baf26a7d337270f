"""``layerscope tasks``: the built-in tasks of ``ablate``, with chance level, scoring and baseline."""

from __future__ import annotations

from ..tasks.registry import task_rows


def register(sub) -> None:
    parser = sub.add_parser(
        "tasks",
        help="the built-in tasks of 'ablate': what each asks, chance level, scoring, baseline on the default model",
        description="The built-in tasks 'layerscope ablate --task NAME' takes: an example, the default number "
        "of worked examples (--shots), the chance level (a uniform guess among the task's answers), the scoring "
        "and the baseline accuracy measured on the default model at the task's defaults.",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    parser.set_defaults(func=run)


def run(args) -> int:
    import json

    table = task_rows()
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    print("task         shots  items  chance  baseline (default model, scoring)")
    for row in table:
        base = "-" if row["baseline"] is None else f"{row['baseline']:.3f} ({row['scoring']})"
        print(f"{row['name']:<12} {row['shots']:>5}  {row['items']:>5}  {row['chance']:>6.3f}  {base}")
        print(f"  {row['description']}")
    print("\nlayerscope ablate --task NAME [--shots K] [--n N] [--seed S] [--scoring first|answer]")
    return 0
