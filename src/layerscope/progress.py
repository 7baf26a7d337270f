"""Progress shown on stderr: a spinner for one long step, a bar for many items.

Both write to stderr so that stdout stays clean for data (``--json``) and never
draw when stderr is not a terminal, apart from one closing line per step.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")

_console = Console(stderr=True, highlight=False)
_enabled = True


def set_enabled(enabled: bool) -> None:
    """Turn all progress output on or off (``--quiet``)."""
    global _enabled
    _enabled = enabled


def console() -> Console:
    return _console


@contextlib.contextmanager
def step(message: str) -> Iterator[None]:
    """Show a spinner with ``message`` while the block runs, then ``message ... done (1.2 s)``."""
    if not _enabled:
        yield
        return
    start = time.perf_counter()
    with _console.status(message):
        yield
    _console.print(f"{message} done ({time.perf_counter() - start:.1f} s)")


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``items`` with a progress bar (count, elapsed, remaining)."""
    if not _enabled:
        yield from items
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
