"""``layerscope inspect``: one position of some prompts in every layer (seed 001, first half)."""

from __future__ import annotations

from pathlib import Path

from .common import add_model_option, add_out_option


def register(sub) -> None:
    parser = sub.add_parser(
        "inspect",
        help="heatmaps, similarity, logit lens and layer phases of prompts, layer by layer",
        description=(
            "The residual vector at one position of each prompt in every layer: heatmaps, similarity to the "
            "expected answer's embedding and between prompts, the logit lens, and layer phases (3+ prompts)."
        ),
    )
    add_model_option(parser)
    parser.add_argument("--prompt", action="append", dest="prompts", metavar="TEXT", help="a prompt; repeatable (default '5+2=')")
    parser.add_argument("--prompts-file", default=None, metavar="FILE", help="a text file with one prompt per line")
    parser.add_argument("--position", type=int, default=-1, help="token position to read (default -1, the last)")
    parser.add_argument(
        "--target", action="append", dest="targets", metavar="TEXT",
        help="expected answer (one for all prompts or one per prompt); arithmetic prompts like '5+2=' get theirs computed",
    )
    parser.add_argument("--no-bos", action="store_true", help="do not put the BOS token first")
    parser.add_argument("--top-k", type=int, default=5, help="tokens listed per layer by the logit lens (default 5)")
    parser.add_argument("--phases", type=int, default=None, metavar="K", help="number of layer phases (default: chosen)")
    parser.add_argument("--compare-model", default=None, metavar="M", help="a second model source to compare layer by layer")
    parser.add_argument("--raw", action="store_true", help="heatmap of raw values (default: each layer divided by its RMS)")
    add_out_option(parser)
    parser.set_defaults(func=run)


def _read_prompts(path: str) -> list[str]:
    from ..errors import LayerscopeError

    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LayerscopeError(f"cannot read prompts file {path!r}: {exc}") from exc
    prompts = [line for line in lines if line.strip()]
    if not prompts:
        raise LayerscopeError(f"prompts file {path!r} holds no prompt; give one prompt per line")
    return prompts


def run(args) -> int:
    from .. import progress
    from ..experiments.inspect import InspectConfig, run_inspect, validate
    from ..models import load_model
    from ..rundir import default_run_dir

    prompts = list(args.prompts or [])
    if args.prompts_file:
        prompts += _read_prompts(args.prompts_file)
    config = InspectConfig(
        prompts=prompts or ["5+2="],
        position=args.position,
        targets=args.targets,
        bos=not args.no_bos,
        top_k=args.top_k,
        n_phases=args.phases,
        model=args.model,
        compare_model=args.compare_model,
        raw_heatmap=args.raw,
        trust_remote_code=args.trust_remote_code,
    )
    validate(config)
    model = load_model(args.model, trust_remote_code=args.trust_remote_code)
    result = run_inspect(config, model)
    out = result.save(args.out or default_run_dir("inspect"))
    final = result.lens[result.lens["layer"] == "norm"]
    for _, row in final.iterrows():
        target = f", target {row['target']!r} rank {row['target_rank']}" if row["target"] is not None and row["target"] == row["target"] else ""
        progress.console().print(f"{row['prompt']!r}: top-1 {row['top1']!r} (p={row['p_top1']:.2f}){target}")
    if result.phases is not None:
        progress.console().print(f"layer phases: {result.phases.describe(result.layer_labels[:-1])}")
    print(out / "heatmap.html")
    return 0
