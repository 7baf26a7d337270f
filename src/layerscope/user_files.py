"""Files the user names (prompts, texts, tasks, token sets): read bounded, never blocking, refused in one line.

Every reader of a user's text, JSON, JSON Lines, YAML or CSV input goes through :func:`read_user_text`:

- the file is opened non-blocking and checked with ``fstat`` on the open descriptor, so a FIFO, socket or
  device (``/dev/zero``) is refused at once instead of hanging or filling memory, and a file swapped after
  the check is never read;
- it must be a regular file of at most :data:`MAX_USER_FILE_BYTES` (a sparse 3 GB file is refused by its
  size, before a byte is read), and it is read to that bound at most, even if it grows meanwhile;
- it must be UTF-8.

:func:`parse_json` parses one JSON document (a whole file or one line of JSON Lines) with bounded nesting
and integer size and without lone surrogates (``"\\ud800"``, which no file can hold as UTF-8);
:func:`text_lines` splits text on ``"\\n"`` only, so a line may hold U+0085, U+2028 or U+2029.

Example:
    >>> text = read_user_text("prompts.txt", "prompts file")
    >>> [line for line in text_lines(text) if line.strip()]      # doctest: +SKIP
    ['5+2=', '7*3=']
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from .errors import LayerscopeError

#: The most bytes a user's input file may hold: far above any prompts, task or token-set file.
MAX_USER_FILE_BYTES = 8 << 20
#: Deeper than any input layerscope reads (a task line nests 1 level, a token-set file 2).
MAX_JSON_DEPTH = 32
#: Integers longer than this are refused (Python converts at most 4300 digits; a token needs a few).
MAX_INT_DIGITS = 100


class UserFileError(LayerscopeError):
    """A user's input file that cannot be used: ``"<what> '<path>' <problem>"``.

    ``problem`` alone serves a config error that names the flag instead (``--prompts-file x.txt <problem>``).
    """

    def __init__(self, what: str, path: str | os.PathLike, problem: str):
        self.what, self.path, self.problem = what, os.fspath(path), problem
        super().__init__(f"{what} {self.path!r} {problem}")


def read_user_bytes(
    path: str | os.PathLike, what: str, limit: int = MAX_USER_FILE_BYTES, follow_links: bool = True
) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``); :class:`UserFileError` naming ``what``
    and the path for anything else: missing, a directory, a FIFO or device, unreadable or too big, or (with
    ``follow_links=False``) a symbolic link."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(Path(path).expanduser(), flags)
    except FileNotFoundError:
        raise UserFileError(what, path, "does not exist; give a regular file") from None
    except OSError as exc:
        if not follow_links and os.path.islink(Path(path).expanduser()):
            raise UserFileError(what, path, "is a symbolic link; give the file itself") from None
        raise UserFileError(what, path, f"cannot be opened: {exc.strerror or exc}") from None
    except ValueError as exc:  # a NUL byte in the path
        raise UserFileError(what, path, f"cannot be opened: {exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO, socket or device"
            raise UserFileError(what, path, f"is {kind}, not a regular file")
        if info.st_size > limit:
            raise UserFileError(what, path, f"is {info.st_size} bytes; at most {limit} accepted")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise UserFileError(what, path, f"cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if total > limit:
        raise UserFileError(what, path, f"grew past {limit} bytes while being read (refused)")
    return b"".join(chunks)


def read_user_text(
    path: str | os.PathLike, what: str, limit: int = MAX_USER_FILE_BYTES, follow_links: bool = True
) -> str:
    """:func:`read_user_bytes` decoded as UTF-8 (a byte-order mark is kept, as Python's ``utf-8`` keeps it)."""
    data = read_user_bytes(path, what, limit, follow_links)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = f"is not UTF-8 text (byte {exc.start}: {data[exc.start : exc.start + 1]!r})"
        raise UserFileError(what, path, problem) from None


def text_lines(text: str) -> list[str]:
    """The lines of ``text``, split on ``"\\n"`` only (a trailing ``"\\r"`` removed): U+0085, U+2028 and
    U+2029 stay inside their line, unlike ``str.splitlines``."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


class _JsonRefused(Exception):
    pass


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise _JsonRefused(f"an integer of {len(digits.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(digits)


def parse_json(text: str, where: str, object_pairs_hook=None) -> object:
    """One JSON document; :class:`LayerscopeError` ``"<where> is not valid JSON: ..."`` for bad syntax, nesting
    deeper than :data:`MAX_JSON_DEPTH`, an integer over :data:`MAX_INT_DIGITS` digits or a lone surrogate.

    ``object_pairs_hook`` is passed to :func:`json.loads` (an exception it raises propagates).
    """
    try:
        value = json.loads(text, parse_int=_bounded_int, object_pairs_hook=object_pairs_hook)
    except RecursionError:
        raise LayerscopeError(
            f"{where} is not valid JSON: nested too deeply (more than {MAX_JSON_DEPTH} levels)"
        ) from None
    except _JsonRefused as exc:
        raise LayerscopeError(f"{where} is not valid JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise LayerscopeError(f"{where} is not valid JSON: {exc.msg} (column {exc.colno})") from None
    except ValueError as exc:
        raise LayerscopeError(f"{where} is not valid JSON: {str(exc).splitlines()[0]}") from None
    problem = _json_problem(value)
    if problem:
        raise LayerscopeError(f"{where} is not valid JSON: {problem}")
    return value


def _json_problem(value: object) -> str | None:
    """Nesting past :data:`MAX_JSON_DEPTH` or a string (key or value) holding a lone surrogate, else None."""
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError as exc:
                return f"a lone surrogate {node[exc.start]!r} is not text"
        elif isinstance(node, (dict, list)):
            if depth + 1 > MAX_JSON_DEPTH:
                return f"nested too deeply (more than {MAX_JSON_DEPTH} levels)"
            children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return None
