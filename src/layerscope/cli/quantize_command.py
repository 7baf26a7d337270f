"""``layerscope quantize``: write an MLX (mlx.core.quantize) or GGUF (gguf.quants) quantized copy of a model."""

from __future__ import annotations


def register(sub) -> None:
    parser = sub.add_parser(
        "quantize",
        help="write a quantized copy of a model: an MLX directory or a GGUF file",
        description="Write a quantized copy of a model to compare with the original: --to mlx writes a directory in "
        "mlx-lm's layout quantized by mlx.core.quantize; --to gguf re-quantizes a GGUF file's matrices with "
        "gguf.quants.quantize. The output appears whole or not at all.",
    )
    parser.add_argument(
        "source",
        nargs="?",
        default=None,
        metavar="SOURCE",
        help="a .gguf file, a Hugging Face or MLX directory, a cached hub id, or 'default' (the default model)",
    )
    parser.add_argument("--to", required=True, metavar="FORMAT", help="mlx or gguf")
    parser.add_argument("--bits", default="4", metavar="N", help="MLX bits per weight: 2, 3, 4, 5, 6 or 8 (default 4)")
    parser.add_argument(
        "--group-size", default="64", metavar="N", help="MLX inputs per scale and bias: 32, 64 or 128 (default 64)"
    )
    parser.add_argument(
        "--dtype",
        default=None,
        metavar="DTYPE",
        help="MLX: cast weights to float16, bfloat16 or float32 before quantizing (default: the config's dtype)",
    )
    parser.add_argument("--type", default="Q8_0", metavar="TYPE", help="GGUF type, e.g. Q8_0, F16, BF16 (default Q8_0)")
    parser.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="the run directory to write: the MLX model itself, or the one holding model.gguf",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace what --out holds (a link named as --out is replaced, never followed)",
    )
    parser.set_defaults(func=run)


def _int(flag: str, text: str, valid) -> int:
    from ..errors import LayerscopeError, choices_text

    try:
        return int(text)
    except ValueError:
        raise LayerscopeError(f"{flag} {text} is not an integer; valid: {choices_text(valid)}") from None


def run(args) -> int:
    from .. import progress
    from ..checkpoints.mlx_quant import VALID_BITS, VALID_GROUP_SIZES
    from ..convert.quantize import QuantizeConfig, quantize_run

    config = QuantizeConfig(
        source=args.source,
        to=args.to,
        bits=_int("--bits", args.bits, VALID_BITS),
        group_size=_int("--group-size", args.group_size, VALID_GROUP_SIZES),
        type=args.type,
        dtype=args.dtype,
    )
    result = quantize_run(config, args.out, force=args.force, via="cli")
    for line in result.summary():
        progress.console().print(line, soft_wrap=True)
    print(result.path)
    return 0
