"""``layerscope quantize``: write an MLX (mlx.core.quantize) or GGUF (gguf.quants) quantized copy of a model."""

from __future__ import annotations

from .. import progress
from ..errors import LayerscopeError

HELP = "write a quantized copy of a model: an MLX directory or a GGUF file"
DESCRIPTION = (
    "Write a quantized copy of a model to compare with the original: --to mlx writes a directory in "
    "mlx-lm's layout quantized by mlx.core.quantize; --to gguf re-quantizes a GGUF file's matrices with "
    "gguf.quants.quantize. The output appears whole or not at all."
)


def add_run_options(parser) -> None:
    parser.add_argument(
        "--out",
        default=None,
        metavar="PATH",
        help="the run directory to write (needed): the MLX model itself, or the one holding model.gguf",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace what --out holds (a link named as --out is replaced, never followed)",
    )


def run(config, args) -> int:
    from ..convert.quantize import quantize_run

    if args.out is None:
        raise LayerscopeError("--out is needed: quantize writes its model into a run directory")
    result = quantize_run(config, args.out, force=args.force, via="cli")
    for line in result.summary():
        progress.console().print(line, soft_wrap=True)
    print(result.path)
    return 0
