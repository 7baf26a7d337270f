"""Token text in pandas tables: Python string storage.

Byte-level tokenizers decode a token that ends inside a UTF-8 sequence to a lone surrogate (``'\\udc80'``). pandas 3
stores text in pyarrow strings wherever pyarrow is installed (``datasets`` brings it), and pyarrow refuses lone
surrogates (``UnicodeEncodeError``); Python strings keep them. Every run and every load of a run builds its tables
inside :func:`python_strings`, so a result holds the token text the tokenizer gave, whatever else is installed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def python_strings() -> Iterator[None]:
    """Within it, text columns pandas creates use Python string storage (pandas' default without pyarrow)."""
    import pandas as pd

    with pd.option_context("mode.string_storage", "python"):
        yield
