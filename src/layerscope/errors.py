"""The project's error type: what the user got wrong, in one line."""

from __future__ import annotations

from collections.abc import Iterable


class LayerscopeError(ValueError):
    """Bad input or an unusable file. The message names the bad value and what is valid.

    The command line prints it as one line and exits with code 2.
    """


def choices_text(valid: Iterable[object], limit: int = 20) -> str:
    """Format valid options for an error message: ``'a', 'b', 'c'`` (truncated past ``limit``)."""
    items = [repr(v) if isinstance(v, str) else str(v) for v in valid]
    if len(items) > limit:
        return ", ".join(items[:limit]) + f", ... ({len(items)} in all)"
    return ", ".join(items)
