"""Progress shown on stderr: a line for one long step, a bar for many items.

Where it goes:

- a terminal: rich's live spinner and bar;
- a Jupyter kernel: tqdm's own notebook support (a widget with ipywidgets, else one text line that
  updates in place), one line per step or loop, never a flood;
- anything else (stderr redirected to a file or a pipe): no live display: a step that takes over a second
  says so when that second has passed, a loop writes its count every ten seconds, and each ends with one
  closing line; lines are never wrapped at a guessed width;
- ``--quiet`` (:func:`set_enabled`): nothing at all.

Everything goes to stderr so that stdout stays clean for data (``--json``). While a step runs,
transformers' own progress bars and advisory messages are off; the previous settings come back after.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")

_console = Console(stderr=True, highlight=False, soft_wrap=True)  # a long line stays one line in a log
#: seconds before a step says it has started, and between a loop's count lines, when stderr is not a terminal
PLAIN_START_S, PLAIN_EVERY_S = 1.0, 10.0
_enabled = True
_notebook_depth = 0  # live notebook bars open now (nested ones stay quiet: text bars cannot nest there)


def set_enabled(enabled: bool) -> None:
    """Turn all progress output on or off (``--quiet``)."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    return _enabled


def console() -> Console:
    return _console


def in_notebook() -> bool:
    """True inside a Jupyter (or other ipykernel) kernel; False in a terminal IPython or plain Python."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    try:
        shell = get_ipython() if get_ipython is not None else None
    except Exception:  # pragma: no cover - a broken IPython install
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def mode() -> str:
    """``off`` (quiet), ``notebook``, ``terminal`` or ``plain`` (not a terminal: closing lines only)."""
    if not _enabled:
        return "off"
    if in_notebook():
        return "notebook"
    return "terminal" if _console.is_terminal else "plain"


def _notebook_tqdm():
    """tqdm's notebook widget when ipywidgets is there, else its text bar (no warning about the widget)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    return tqdm


if in_notebook():  # import tqdm's notebook support now, without its warning that ipywidgets is missing
    _notebook_tqdm()


@contextlib.contextmanager
def library_bars_off() -> Iterator[None]:
    """Turn transformers' (and huggingface_hub's) progress bars and advisory messages off for the block.

    The settings in force before come back afterwards: nothing changes for the rest of the process.
    """
    try:
        import huggingface_hub.utils as hub_utils
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a dependency
        yield
        return
    bars = hf_logging.is_progress_bar_enabled()
    hub_bars_off = hub_utils.are_progress_bars_disabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
        if hub_bars_off:
            hub_utils.disable_progress_bars()


@contextlib.contextmanager
def step(message: str) -> Iterator[None]:
    """Show ``message`` while the block runs, then ``message done (1.2 s)``.

    Transformers' own bars are off for the block (see :func:`library_bars_off`).
    """
    global _notebook_depth
    where = mode()
    start = time.perf_counter()
    with library_bars_off():
        if where == "off":
            yield
            return
        if where == "notebook":
            if _notebook_depth:
                yield
                _notebook_tqdm().write(f"{message} done ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
                return
            bar = _notebook_tqdm()(total=1, desc=message, bar_format="{desc}", file=sys.stderr, leave=True)
            _notebook_depth += 1
            try:
                yield
                bar.set_description_str(f"{message} done ({time.perf_counter() - start:.1f} s)", refresh=False)
            finally:
                _notebook_depth -= 1
                bar.close()
            return
        if where == "plain":  # no live display: a line once the step has taken a second
            timer = threading.Timer(PLAIN_START_S, lambda: _console.print(f"{message} ..."))
            timer.daemon = True
            timer.start()
            try:
                yield
            finally:
                timer.cancel()
        else:
            with _console.status(message):
                yield
        _console.print(f"{message} done ({time.perf_counter() - start:.1f} s)")


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``items`` with a progress bar (count, elapsed, remaining)."""
    global _notebook_depth
    where = mode()
    if where == "off":
        yield from items
        return
    if where == "notebook":
        if total is None and hasattr(items, "__len__"):
            total = len(items)
        if _notebook_depth:  # inside another live bar: one closing line instead of a second bar
            start = time.perf_counter()
            yield from items
            _notebook_tqdm().write(f"{description} done ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
            return
        _notebook_depth += 1
        try:
            # mininterval keeps a text bar (no ipywidgets) to a few updates a second
            with _notebook_tqdm()(items, desc=description, total=total, file=sys.stderr, mininterval=0.5) as bar:
                yield from bar
        finally:
            _notebook_depth -= 1
        return
    if where == "plain":
        yield from _plain_track(items, description, total)
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=_console, transient=False) as bar:
        yield from bar.track(items, total=total, description=description)


def _plain_track(items: Iterable[T], description: str, total: int | None) -> Iterator[T]:
    """:func:`track` where stderr is not a terminal: ``description n/total (s)`` every :data:`PLAIN_EVERY_S`
    seconds, then one closing line."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    of = f"/{total}" if total is not None else ""
    start = last = time.perf_counter()
    count = 0
    for item in items:
        yield item
        count += 1
        now = time.perf_counter()
        if now - last >= PLAIN_EVERY_S:
            _console.print(f"{description} {count}{of} ({now - start:.0f} s)")
            last = now
    _console.print(f"{description} {count}{of} done ({time.perf_counter() - start:.1f} s)")
