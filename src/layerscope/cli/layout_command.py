"""``layerscope layout``: list a checkpoint's tensors from its headers (no weights read)."""

from __future__ import annotations

from .common import out_dir

HELP = "tensor tree of a checkpoint (safetensors, sharded, GGUF, MLX) from headers only"
DESCRIPTION = (
    "The tensor tree of a checkpoint, read from headers only: groups with child counts, shapes, "
    "dtypes, MLX-quantized layers as one tensor, repeated layers folded, totals, and the memory a forward "
    "needs in float32, bfloat16 and float16 (weights plus the capture buffers of --batch x --seq-len tokens)."
)


def add_run_options(parser) -> None:
    parser.add_argument(
        "--out",
        type=out_dir,
        default=None,
        metavar="DIR",
        help="also write a run directory (layout.txt/.json/.html, treemap.html, run.json)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace what --out holds (another run, other files) instead of refusing it",
    )


def run(config, args) -> int:
    from ..experiments.layout import execute_layout

    result = execute_layout(config, out=args.out, via="cli", force=args.force)  # a run directory only with --out
    print(result.json_text() if config.json else result.text())
    return 0
