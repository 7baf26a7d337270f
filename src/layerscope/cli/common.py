"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import progress
from ..model_spec import ModelSpec, parse_max_memory, parse_model_text
from ..rundir import default_run_dir
from ..runner import execute


def model_text(text: str) -> str:
    """An argparse ``type`` for ``--model``: ``SOURCE`` or ``NAME=SOURCE``, then optionally the model's own options
    ``@dtype=bfloat16,device_map=auto`` (refuses ``NAME=``, ``=SOURCE`` and unknown options)."""
    try:
        parse_model_text(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


MODEL_HELP = (
    "model: a hub id, a local directory, a .gguf file, or 'default' (Gemma 3 270M, offline); "
    "NAME=SOURCE names it in tables, figures and reports; SOURCE@dtype=bfloat16,device_map=auto gives this "
    "model its own options (over --dtype, --device-map, ...)"
)


#: the options every model carries, beside ``--model``
MODEL_OPTIONS = ("dtype", "device_map", "max_memory", "offload_dir", "trust_remote_code")


def add_model_option(parser, multiple: bool = False, help: str | None = None, options=MODEL_OPTIONS) -> None:
    """``--model`` (repeatable with ``multiple``) and the ``options`` every :class:`ModelSpec` carries."""
    text = help or MODEL_HELP + ("; repeatable" if multiple else "")
    if multiple:
        parser.add_argument("--model", action="append", dest="models", type=model_text, metavar="M", help=text)
    else:
        parser.add_argument("--model", default=None, type=model_text, metavar="M", help=text)
    if "dtype" in options:
        parser.add_argument(
            "--dtype",
            default=None,
            choices=["float32", "bfloat16", "float16", "auto"],
            help="weights' dtype (default float32)",
        )
    if "device_map" in options:
        parser.add_argument(
            "--device-map",
            default=None,
            metavar="MAP",
            help="accelerate's device map: 'auto' (GPUs, then CPU, then disk), 'sequential', 'balanced', 'cpu', "
            "'cuda:0'",
        )
    if "max_memory" in options:
        parser.add_argument(
            "--max-memory",
            default=None,
            type=max_memory_arg,
            metavar="DEV=SIZE,...",
            help="the most each device holds of the weights, e.g. cpu=2GiB or 0=20GiB,cpu=30GiB; the rest is "
            "offloaded to disk (implies --device-map auto)",
        )
    if "offload_dir" in options:
        parser.add_argument(
            "--offload-dir",
            default=None,
            type=offload_dir_arg,
            metavar="DIR",
            help="folder for weights offloaded to disk (default: a temporary one; implies --device-map auto)",
        )
    if "trust_remote_code" in options:
        parser.add_argument("--trust-remote-code", action="store_true", help="allow the model repository's own code")


def max_memory_arg(text: str) -> str:
    """An argparse ``type`` for ``--max-memory``: checked now (one line naming the bad part), kept as text."""
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


def model_spec(args, source: str | None = None):
    """The :class:`ModelSpec` that ``source`` (``SOURCE`` or ``NAME=SOURCE``, with its own ``@options``; None:
    the default model) and the model options of ``args`` give (its own options win)."""
    name, text, own = (None, None, {}) if source is None else parse_model_text(source)
    shared = {option: getattr(args, option, None) for option in MODEL_OPTIONS if option != "trust_remote_code"}
    shared["trust_remote_code"] = getattr(args, "trust_remote_code", False)
    return ModelSpec(source=text, name=name, **{**shared, **own})


def run_config(config, out: str | None, force: bool = False):
    """The command line's tail for every experiment: run it, write ``--out``, print key numbers and the main file;
    returns the result."""
    out_path = Path(out) if out else default_run_dir(config.experiment)
    result = execute(config, out=out_path, via="cli", force=force)
    for line in result.summary():
        progress.console().print(line)
    print(out_path / result.main_file)
    return result


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


def add_out_option(parser, check=out_dir) -> None:
    """``--out DIR`` (each value passed through ``check``, an argparse type) and ``--force``."""
    parser.add_argument(
        "--out", type=check, default=None, metavar="DIR", help="run directory (default runs/<command>-<time>)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace what --out holds (another run, other files) instead of refusing it",
    )
