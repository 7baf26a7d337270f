"""How a step shows in a Jupyter notebook: library chatter held while it runs, plotly.js sent once per notebook.

A result's ``_repr_html_`` draws its main figure with :func:`figure_html`: plotly.js (about 4.8 MB) is inlined
with the first figure a notebook shows, so the notebook works offline, and left out of the later ones. "A
notebook" is one front end's session with the kernel (a notebook opened, or run by nbclient); a kernel that
serves several notebooks in turn sends plotly.js to each. ``plotlyjs("cdn")`` opts in to loading it from
plotly's CDN instead: every figure names the script (a few hundred bytes), and the notebook needs the network.

:func:`quiet_step` holds what the libraries a step drives print while it runs in a notebook (transformers'
deprecation warnings, accelerate's ``Some parameters are on the meta device`` line): kept, not shown; the last
step's are in :func:`held`. layerscope's own warnings still show.

Example:
    >>> from layerscope import notebook
    >>> notebook.plotlyjs("cdn")   # small notebooks; figures need the network
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Literal

PlotlyJs = Literal["inline", "cdn"]
_mode: PlotlyJs = "inline"
#: the notebook sessions that have plotly.js inlined already
_sent: set[str] = set()
#: what the last step held: ``(log records, warnings)``
_held: tuple[list[logging.LogRecord], list[warnings.WarningMessage]] = ([], [])


def plotlyjs(mode: PlotlyJs = "inline") -> None:
    """How figures in a notebook get plotly.js: ``"inline"`` (with the first figure of each notebook; offline,
    the default) or ``"cdn"`` (each figure loads it from plotly's CDN; small notebooks, needs the network)."""
    global _mode
    if mode not in ("inline", "cdn"):
        from .errors import LayerscopeError

        raise LayerscopeError(f"plotlyjs {mode!r} is not a mode; valid: 'inline', 'cdn'")
    _mode = mode


def notebook_session() -> str:
    """An id of the front end (the notebook) whose cell is running; ``""`` outside a kernel."""
    try:
        from IPython import get_ipython

        kernel = getattr(get_ipython(), "kernel", None)
        parent = kernel.get_parent("shell") if kernel is not None else None
    except Exception:  # no IPython, or a kernel without parent messages
        return ""
    return str(((parent or {}).get("header") or {}).get("session", ""))


def figure_html(figure) -> str:
    """A plotly figure as an HTML fragment for a notebook: plotly.js inlined with the first figure of the notebook
    (see the module), or named from the CDN."""
    if _mode == "cdn":
        include: bool | str = "cdn"
    else:
        session = notebook_session()
        include = session not in _sent
        _sent.add(session)
    return figure.to_html(full_html=False, include_plotlyjs=include, config={"displaylogo": False})


def held() -> tuple[list[logging.LogRecord], list[warnings.WarningMessage]]:
    """The library log records and warnings the last :func:`quiet_step` in a notebook held."""
    return _held


def _is_own(message: warnings.WarningMessage) -> bool:
    """A warning layerscope raised (as the command line tells them: by the file it names)."""
    return "layerscope" in str(message.filename)


@contextlib.contextmanager
def quiet_step() -> Iterator[None]:
    """In a notebook, hold the libraries' log records and warnings while the block runs (layerscope's own warnings
    are shown as usual); elsewhere, nothing changes (the command line holds them itself)."""
    from .progress import in_notebook

    if not in_notebook():
        yield
        return
    global _held
    from .library_logs import held_library_logs

    with held_library_logs(replay=False) as records, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            yield
        finally:
            _held = (list(records.records), [m for m in caught if not _is_own(m)])
            own = [m for m in caught if _is_own(m)]
    for message in own:  # shown after the block, as they would have been
        warnings.showwarning(message.message, message.category, message.filename, message.lineno)
