"""While a command or a notebook step runs, the log lines of the libraries it drives (transformers, accelerate, Ray, ...)
are held.

Libraries log through Python's ``logging``: accelerate through loggers with no handler (which end in
``logging.lastResort``, printing to stderr), transformers and Ray through handlers of their own. Printed, their
lines come before layerscope's one error line (``Some parameters are on the meta device ...``, then
``layerscope: error: ...``). :func:`held_library_logs` routes both paths into memory for the command: a run prints
only its own output, a failure only its one line; ``--debug`` prints what was held (before the traceback).

Example:
    >>> with held_library_logs(replay=False) as held:
    ...     logging.getLogger("accelerate.big_modeling").warning("offloaded")
    >>> [r.getMessage() for r in held.records]
    ['offloaded']
"""

from __future__ import annotations

import collections
import contextlib
import logging
import sys
from collections.abc import Iterator

#: the most records held (the newest kept): a chatty library cannot fill memory
MAX_HELD_RECORDS = 2000


class HeldRecords(logging.Handler):
    """A handler that keeps the last :data:`MAX_HELD_RECORDS` records instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: collections.deque[logging.LogRecord] = collections.deque(maxlen=MAX_HELD_RECORDS)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _library_loggers() -> list[logging.Logger]:
    """Every logger with handlers of its own that is not layerscope's (the root logger included)."""
    loggers = [logging.getLogger()]
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and logger.handlers and name.split(".")[0] != "layerscope":
            loggers.append(logger)
    return loggers


@contextlib.contextmanager
def held_library_logs(replay: bool) -> Iterator[HeldRecords]:
    """Hold library log records during the block (loggers with handlers at its start, and every logger that
    falls back to ``logging.lastResort``); afterwards restore the handlers and, with ``replay``, print the held
    records to stderr as ``name: LEVEL: message`` lines."""
    held = HeldRecords()
    saved = [(logger, logger.handlers[:], logger.propagate) for logger in _library_loggers()]
    last_resort = logging.lastResort
    for logger, handlers, _ in saved:
        if handlers:
            logger.handlers = [held]
            logger.propagate = False
    logging.lastResort = held
    try:
        yield held
    finally:
        logging.lastResort = last_resort
        for logger, handlers, propagate in saved:
            logger.handlers = handlers
            logger.propagate = propagate
        if replay:
            for record in held.records:
                sys.stderr.write(f"{record.name}: {record.levelname}: {record.getMessage()}\n")
