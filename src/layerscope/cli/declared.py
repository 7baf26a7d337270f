"""Each experiment's command, generated from its config's fields: the inverse of ``ExperimentConfig.command()``.

A field declared with :func:`~layerscope.experiment.option` becomes one option (or the positional arguments):
a ``ModelSpec`` is ``--model`` with the options every model carries, a bool a switch, a sequence a repeated
flag (or one joined argument), a number ``int``, anything else text. The values are checked by the config's
``validate()``, so a bad value gives the same one line from Python and from the command line.

A command module (``cli/<name>_command.py``) gives only what the command prints: ``HELP`` and ``DESCRIPTION``,
and, where it prints more than the summary and the main file, ``run(config, args) -> exit code`` and
``add_run_options(parser)`` (default: ``--out`` and ``--force``).

Example:
    >>> parse(["layerscope", "tokens", "--dims", "2"])
    TokensConfig(..., dims=2, ...)
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import typing
from collections.abc import Sequence
from dataclasses import fields

from ..experiment import ExperimentConfig, field_choices, field_default, field_hints
from ..model_spec import ModelSpec
from ..registry import ENTRIES, Entry
from .common import add_model_option, add_out_option, model_spec, model_text, run_config
from .main import build_parser


def command_module(name: str):
    """``layerscope.cli.<name>_command``."""
    return importlib.import_module(f"{__package__}.{name}_command")


def register(sub, found: Entry) -> None:
    """Add ``layerscope <name>``: hand-written where its module has ``register``, else generated from its config."""
    module = command_module(found.name)
    if hasattr(module, "register"):
        module.register(sub)
        return
    parser = sub.add_parser(found.name, help=module.HELP, description=module.DESCRIPTION)
    add_config_options(parser, found.config_class())
    getattr(module, "add_run_options", add_out_option)(parser)
    parser.set_defaults(func=lambda args: run(found, args))


def run(found: Entry, args) -> int:
    config = config_from_args(found.config_class(), args)
    command = getattr(command_module(found.name), "run", None)
    if command is None:
        run_config(config, args.out, args.force)
        return 0
    return command(config, args)


# ----- fields -> options ---------------------------------------------------------------------------------
def cli_fields(cls: type[ExperimentConfig], skip: Sequence[str] = ()) -> list[dataclasses.Field]:
    """The fields of ``cls`` the command line gives (a flag or the positional arguments)."""
    return [f for f in fields(cls) if f.name not in skip and (f.metadata.get("positional") or cls.flag_of(f.name))]


def model_fields(cls: type[ExperimentConfig]) -> tuple[str, ...]:
    """The fields holding the models a run loads (``model``, ``models``): a sweep gives them itself."""
    return tuple(f.name for f in fields(cls) if f.name in ("model", "models") and _is_spec(field_hints(cls)[f.name]))


def add_config_options(parser, cls: type[ExperimentConfig], skip: Sequence[str] = ()) -> None:
    """One option (or the positional arguments) per field of ``cls`` the command line gives."""
    hints = field_hints(cls)
    for f in cli_fields(cls, skip):
        hint, meta = hints[f.name], f.metadata
        default = field_default(f)
        flag = cls.flag_of(f.name)
        choices = field_choices(cls, f)
        shown = "|".join(map(str, choices)) if choices and not _sequence(hint) else None
        text = {"help": meta.get("help"), "metavar": meta.get("metavar") or shown}
        if _is_spec(hint) and f.name in ("model", "models"):
            add_model_option(parser, multiple=_sequence(hint), help=meta.get("help"), options=cls.model_options)
        elif _is_spec(hint):
            parser.add_argument(flag, dest=f.name, default=None, type=model_text, **_metavar(text, "M"))
        elif meta.get("positional"):
            many = _sequence(hint)
            nargs = ("+" if default is dataclasses.MISSING else "*") if many else None
            parser.add_argument(f.name, nargs=nargs, **text)
        elif hint is bool:
            parser.add_argument(flag, dest=f.name, action="store_false" if default else "store_true", help=text["help"])
        elif _sequence(hint) and not meta.get("join"):
            parser.add_argument(flag, dest=f.name, action="append", default=None, type=_scalar(hint), **text)
        else:
            required = default is dataclasses.MISSING
            parser.add_argument(flag, dest=f.name, default=None, required=required, type=_scalar(hint), **text)
        if meta.get("item"):
            parser.add_argument(
                f"{f.name}_item", nargs="?", default=None, metavar=meta["item"], help=f"one more {flag}"
            )


def _metavar(text: dict, metavar: str) -> dict:
    return {**text, "metavar": text["metavar"] or metavar}


# ----- options -> config ---------------------------------------------------------------------------------
def config_from_args(cls: type[ExperimentConfig], args: argparse.Namespace, skip: Sequence[str] = (), **given):
    """The config of class ``cls`` that the parsed options give; a field not given keeps its default."""
    values = dict(given)
    hints = field_hints(cls)
    for f in cli_fields(cls, skip):
        if f.name in values:
            continue
        raw = getattr(args, f.name, None)
        hint = hints[f.name]
        if _is_spec(hint) and f.name == "models":
            sources = raw or ([None] if field_default(f) else [])
            values[f.name] = tuple(model_spec(args, source) for source in sources)
        elif _is_spec(hint) and f.name == "model":
            values[f.name] = model_spec(args, raw)
        elif f.metadata.get("item") and getattr(args, f"{f.name}_item", None) is not None:
            values[f.name] = (*(raw or ()), getattr(args, f"{f.name}_item"))
        elif raw is None:
            continue
        elif _is_spec(hint):
            values[f.name] = model_spec(args, raw)
        elif f.metadata.get("join") and isinstance(raw, str):
            values[f.name] = tuple(word.strip() for word in raw.split(f.metadata["join"]))
        elif isinstance(raw, list):
            values[f.name] = tuple(raw)
        else:
            values[f.name] = raw
    return cls(**values)


def parse(argv: Sequence[str]) -> ExperimentConfig:
    """The config a command line gives (``["layerscope", "tokens", ...]``, as ``config.command()`` writes it)."""
    argv = list(argv)[1:] if list(argv)[:1] == ["layerscope"] else list(argv)
    args = build_parser().parse_args(argv)
    if args.command == "sweep":
        from .sweep_command import config_from_args as sweep_config

        return sweep_config(args)
    return config_from_args(ENTRIES[args.command].config_class(), args)


# ----- annotations ---------------------------------------------------------------------------------------
def _options(hint) -> list:
    if typing.get_origin(hint) in (typing.Union, __import__("types").UnionType):
        return [o for arg in typing.get_args(hint) for o in _options(arg)]
    return [hint]


def _is_spec(hint) -> bool:
    return any(o is ModelSpec or ModelSpec in typing.get_args(o) for o in _options(hint))


def _sequence(hint) -> bool:
    return any(typing.get_origin(o) in (tuple, list) for o in _options(hint))


def _scalar(hint):
    """``int`` for a number field (``int``, ``int | None``, ``Literal[2, 3]``), else ``str``."""
    found = []
    for option in _options(hint):
        if typing.get_origin(option) in (tuple, list):
            found += [a for arg in typing.get_args(option) if arg is not Ellipsis for a in _options(arg)]
        elif typing.get_origin(option) is typing.Literal:
            found += [type(v) for v in typing.get_args(option)]
        else:
            found.append(option)
    found = [t for t in found if t is not type(None)]
    return integer if found and all(t is int for t in found) else str


def integer(text: str) -> int:
    """An argparse ``type`` for a whole number (its range is checked by the config)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
