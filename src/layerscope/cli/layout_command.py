"""``layerscope layout``: list a checkpoint's tensors from its headers (no weights read)."""

from __future__ import annotations

from .common import out_dir
from .parser import positive_int


def register(sub) -> None:
    parser = sub.add_parser(
        "layout",
        help="tensor tree of a checkpoint (safetensors, sharded, GGUF, MLX) from headers only",
        description="The tensor tree of a checkpoint, read from headers only: groups with child counts, shapes, "
        "dtypes, MLX-quantized layers as one tensor, repeated layers folded, totals, and the memory a forward "
        "needs in float32, bfloat16 and float16 (weights plus the capture buffers of --batch x --seq-len tokens).",
    )
    parser.add_argument(
        "path",
        metavar="PATH_OR_ID",
        help="a .safetensors/.gguf file, an index, a directory, a cached hub id, or 'default'",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    parser.add_argument("--html", default=None, metavar="FILE", help="also write a self-contained HTML page")
    parser.add_argument("--no-fold", action="store_true", help="show every layer, even identical ones")
    parser.add_argument(
        "--batch",
        type=positive_int,
        default=1,
        metavar="N",
        help="sequences per forward for the memory estimate (default 1)",
    )
    parser.add_argument(
        "--seq-len",
        type=positive_int,
        default=128,
        metavar="N",
        help="tokens per sequence for the memory estimate (default 128)",
    )
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
    parser.set_defaults(func=run)


def config(args):
    """The :class:`~layerscope.experiments.layout.LayoutConfig` the arguments give."""
    from ..experiments.layout import LayoutConfig

    return LayoutConfig(
        source=args.path,
        fold=not args.no_fold,
        json=args.json,
        html=args.html,
        batch=args.batch,
        seq_len=args.seq_len,
    )


def run(args) -> int:
    from ..experiments.layout import execute_layout

    layout_config = config(args)
    result = execute_layout(layout_config, out=args.out, via="cli", force=args.force)  # a run directory only with --out
    print(result.json_text() if layout_config.json else result.text())
    return 0
