"""Entry point: ``main(argv) -> int``; errors become one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import warnings
from collections.abc import Sequence

from .. import progress
from ..errors import LayerscopeError
from ..library_logs import held_library_logs
from ..registry import ENTRIES
from ..runner import INTERRUPTED
from .parser import Parser, UsageExit

#: the commands that are not experiments (each module defines ``register(subparsers)`` that sets ``func``)
OTHER_COMMANDS = ("tasks",)


def command_names() -> list[str]:
    """Every subcommand: an experiment's (from the registry), then the others."""
    return [e.name for e in ENTRIES.values() if e.command] + list(OTHER_COMMANDS)


def build_parser() -> Parser:
    parser = Parser(
        prog="layerscope",
        description="Look inside language models: how a model represents tokens, layer by layer.",
    )
    parser.add_argument("--version", action="version", version=f"layerscope {_version()}")
    _add_global_flags(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    from .declared import register

    for entry in ENTRIES.values():
        if entry.command:
            register(sub, entry)
    for name in OTHER_COMMANDS:
        importlib.import_module(f"{__package__}.{name}_command").register(sub)
    for command in sub.choices.values():  # the global flags work after the subcommand too
        _add_global_flags(command, default=argparse.SUPPRESS)
    return parser


def _add_global_flags(parser, default) -> None:
    parser.add_argument("--debug", action="store_true", default=default, help="show full tracebacks (for bug reports)")
    parser.add_argument("--quiet", action="store_true", default=default, help="no progress output")


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("layerscope")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        from .. import __version__

        return __version__


def _stdout_closed() -> int:
    """The reader of stdout went away (``layerscope ... | head``): stop quietly, like ``git log | head``."""
    try:  # later flushes (at exit) must not fail again: point stdout at /dev/null
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # pragma: no cover - stdout is not a real file
        pass
    return 0


#: what transformers and huggingface_hub read when they are first imported, for :func:`_quiet_libraries`
QUIET_ENVIRONMENT = {"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


@contextlib.contextmanager
def _quiet_libraries():
    """Keep third-party chatter (transformers' advisory warnings and bars) off the terminal while a command runs.

    transformers is not imported for this: ``--help`` and a bad value's line come before any heavy import. Where
    it is not loaded yet, the variables it reads at import are set for the command (a user's own value kept) and
    restored after; where it is, its settings are changed directly.
    """
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    added = {name: value for name, value in QUIET_ENVIRONMENT.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, UserWarning) and "layerscope" in str(filename):
        sys.stderr.write(f"warning: {message}\n")


INTERRUPTED_LINE = "layerscope: interrupted; finished files are kept, rerun with the same --out to resume"


def _on_interrupt(signum, frame) -> None:
    """Ctrl-C: remember it (a swallowed KeyboardInterrupt must not let the run go on and exit 0), then raise."""
    INTERRUPTED.set()
    raise KeyboardInterrupt


@contextlib.contextmanager
def _interrupt_handler():
    """Install :func:`_on_interrupt` for the command (main thread only), restoring the previous handler after; the
    interruption is forgotten when the command ends (a later run in the same process, from Python, must not see it)."""
    INTERRUPTED.clear()
    try:
        previous = signal.signal(signal.SIGINT, _on_interrupt)
    except (ValueError, OSError):  # not the main thread: leave Python's default
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        INTERRUPTED.clear()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad input, 1 unexpected error, 130 Ctrl-C)."""
    with _interrupt_handler():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv[: argv.index("--")] if "--" in argv else "--debug" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        progress.set_enabled(not args.quiet)
        with _quiet_libraries(), warnings.catch_warnings(), held_library_logs(replay=debug):
            warnings.showwarning = _show_warning
            code = int(args.func(args) or 0)
            if INTERRUPTED.is_set():  # Ctrl-C came but was swallowed on its way out
                raise KeyboardInterrupt
            sys.stdout.flush()
            return code
    except BrokenPipeError:
        return _stdout_closed()
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    except UsageExit as exc:
        print(exc.message, file=sys.stderr)
        return 2
    except LayerscopeError as exc:
        if debug:
            raise
        print(f"layerscope: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break the one line below
        print(INTERRUPTED_LINE, file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure: one line unless --debug
        if debug:
            raise
        print(
            f"layerscope: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
