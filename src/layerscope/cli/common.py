"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path


def model_text(text: str) -> str:
    """An argparse ``type`` for ``--model``: ``SOURCE`` or ``NAME=SOURCE`` (refuses ``NAME=`` and ``=SOURCE``)."""
    from ..model_spec import split_named_source

    try:
        split_named_source(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


MODEL_HELP = (
    "model: a hub id, a local directory, a .gguf file, or 'default' (Gemma 3 270M, offline); "
    "NAME=SOURCE names it in tables, figures and reports"
)


def add_model_option(parser, multiple: bool = False) -> None:
    """``--model`` (repeatable with ``multiple``) and the options every :class:`ModelSpec` carries."""
    if multiple:
        parser.add_argument(
            "--model", action="append", dest="models", type=model_text, metavar="M", help=MODEL_HELP + "; repeatable"
        )
    else:
        parser.add_argument("--model", default=None, type=model_text, metavar="M", help=MODEL_HELP)
    parser.add_argument(
        "--dtype",
        default=None,
        choices=["float32", "bfloat16", "float16", "auto"],
        help="weights' dtype (default float32)",
    )
    parser.add_argument(
        "--device-map",
        default=None,
        metavar="MAP",
        help="accelerate's device map: 'auto' (GPUs, then CPU, then disk), 'sequential', 'balanced', 'cpu', 'cuda:0'",
    )
    parser.add_argument(
        "--max-memory",
        default=None,
        type=max_memory_arg,
        metavar="DEV=SIZE,...",
        help="the most each device holds of the weights, e.g. cpu=2GiB or 0=20GiB,cpu=30GiB; the rest is "
        "offloaded to disk (implies --device-map auto)",
    )
    parser.add_argument(
        "--offload-dir",
        default=None,
        type=offload_dir_arg,
        metavar="DIR",
        help="folder for weights offloaded to disk (default: a temporary one; implies --device-map auto)",
    )
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the model repository's own code")


def max_memory_arg(text: str) -> str:
    """An argparse ``type`` for ``--max-memory``: checked now (one line naming the bad part), kept as text."""
    from ..model_spec import parse_max_memory

    try:
        parse_max_memory(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} {exc}") from None
    return text


def offload_dir_arg(text: str) -> str:
    """An argparse ``type`` for ``--offload-dir``: not empty, and not an existing file."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is empty; give a folder for weights offloaded to disk")
    if Path(text).expanduser().is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is a file; give a folder for weights offloaded to disk")
    return text


def model_spec(args, source: str | None | object = ...):
    """The :class:`ModelSpec` the options give (``source`` overrides ``--model``, for repeated models)."""
    from ..model_spec import ModelSpec, split_named_source

    text = args.model if source is ... else source
    name, text = (None, None) if text is None else split_named_source(text)
    return ModelSpec(
        source=text,
        name=name,
        dtype=args.dtype,
        device_map=args.device_map,
        trust_remote_code=args.trust_remote_code,
        max_memory=getattr(args, "max_memory", None),
        offload_dir=getattr(args, "offload_dir", None),
    )


def model_specs(args) -> tuple:
    """One :class:`ModelSpec` per repeated ``--model`` (the default model when none is given)."""
    return tuple(model_spec(args, source) for source in (args.models or [None]))


def token_set_fields(args) -> dict:
    """The :class:`~layerscope.tokensets.options.TokenSetOptions` fields from ``--set/--tokens/...``."""
    from ..tokensets.options import inline_words

    return {
        "sets": tuple(args.sets or ()),
        "tokens": inline_words(args.tokens),
        "leading_space": args.leading_space,
        "multi_token": args.multi_token,
    }


def run_config(config, out: str | None, force: bool = False) -> int:
    """The command line's tail for every experiment: run it, write ``--out``, print key numbers and the main file."""
    from .. import progress
    from ..rundir import default_run_dir
    from ..runner import execute

    out_path = Path(out) if out else default_run_dir(config.experiment)
    result = execute(config, out=out_path, via="cli", force=force)
    for line in result.summary():
        progress.console().print(line)
    print(out_path / result.main_file)
    return 0


def out_dir(text: str) -> str:
    """``--out DIR``: refused at once when it, or a folder above it, is an existing file."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is empty; give a directory")
    path = Path(text).expanduser()
    for place in (path, *path.parents):
        try:
            found = place.exists()
        except OSError as exc:  # a name too long, a loop of links
            raise argparse.ArgumentTypeError(f"{text!r} cannot be used ({exc.strerror}); give a directory") from None
        if found:
            if not place.is_dir():
                raise argparse.ArgumentTypeError(f"{text!r} is not a directory ({str(place)!r} is a file)")
            break
    return text


def add_out_option(parser) -> None:
    parser.add_argument(
        "--out", type=out_dir, default=None, metavar="DIR", help="run directory (default runs/<command>-<time>)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace what --out holds (another run, other files) instead of refusing it",
    )


def add_set_options(parser, examples: str = "digits, number-words, categories, boy_first_names, ...") -> None:
    """``--set NAME|FILE`` (repeatable) and ``--tokens A,B,C``."""
    parser.add_argument(
        "--set",
        action="append",
        dest="sets",
        metavar="NAME|FILE",
        help=f"a built-in set ({examples}) or a JSON/YAML/text file; repeatable",
    )
    parser.add_argument("--tokens", default=None, metavar="A,B,C", help="an inline set of comma-separated words")


def add_token_set_options(parser) -> None:
    add_set_options(parser)
    parser.add_argument("--leading-space", action="store_true", help="tokenize ' word' instead of 'word'")
    parser.add_argument(
        "--multi-token",
        default="mean",
        choices=["mean", "first", "last"],
        help="how a word that splits into several tokens becomes one vector (default: mean)",
    )
