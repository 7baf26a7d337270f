"""Display names read from files (a GGUF ``general.name``, a config's ``_name_or_path``, a folder's name): made
safe to print on a terminal, in a markdown or HTML table and in a file name, in this one place.

A name from a file is data, not text to obey: an ANSI escape would recolour or rewrite the terminal, a newline
would forge an output line or break a table row, a bidi override would reorder what is shown, ``/`` would make a
folder. :func:`printable_name` keeps the visible text only.

Example:
    >>> printable_name("Evil\\x1b[2J\\x1b[31m model\\nline 2/x")
    'Evil model line 2-x'
"""

from __future__ import annotations

import re
import unicodedata

#: the longest name kept (longer ones end in "...")
MAX_NAME_CHARS = 100

# ANSI/VT sequences: CSI (ESC [ ... final byte), OSC (ESC ] ... BEL or ESC \), and two-character escapes
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]|\x9b[0-?]*[ -/]*[@-~]"
)


def printable_name(text: object) -> str | None:
    """``text`` as a display name: escape sequences dropped; control, format (bidi), separator and unassigned
    characters as spaces; runs of spaces as one; ``/`` and ``\\`` as ``-``; no leading ``.``, ``~`` or ``-``;
    at most :data:`MAX_NAME_CHARS` characters. None when nothing visible is left (or ``text`` is no string)."""
    if not isinstance(text, str):
        return None
    text = _ESCAPE_SEQUENCE.sub("", text)
    kept = [" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in text]
    name = " ".join("".join(kept).split())
    name = name.replace("/", "-").replace("\\", "-").lstrip(".~- ")
    if len(name) > MAX_NAME_CHARS:
        name = name[: MAX_NAME_CHARS - 3].rstrip() + "..."
    return name or None
