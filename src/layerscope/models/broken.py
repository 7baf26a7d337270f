"""What the libraries raise on broken model files, turned into one line (``LayerscopeError``).

transformers, tokenizers, safetensors and huggingface_hub raise many types on a malformed config, tokenizer
or weights file: ``ValueError`` and ``KeyError``, but also ``SafetensorError``, huggingface_hub's
``StrictDataclassFieldValidationError`` (a config value of the wrong type) and the plain ``Exception`` the
tokenizers library raises (``data did not match any variant of untagged enum ...``). Inside :func:`refused`
they all become ``cannot load ...: <the library's first line>``.
"""

from __future__ import annotations

import contextlib
import pickle
import struct

from ..errors import LayerscopeError

_FILE_ERRORS = (
    OSError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    RuntimeError,
    OverflowError,
    ArithmeticError,
    AssertionError,
    struct.error,
)
#: modules whose own exception types mean "this file is broken"
_LIBRARIES = ("safetensors", "tokenizers", "huggingface_hub", "gguf", "transformers")


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first non-blank line of an exception's message (at most ``limit`` characters), else its type; a
    first line that only announces the next (ends with ``:``) gets the next one joined to it."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    if text.endswith(":") and len(lines) > 1:
        text = f"{text} {lines[1]}"
    return text if len(text) <= limit else text[:limit] + "..."


def is_file_error(exc: BaseException) -> bool:
    """Whether ``exc`` is what a library raises on a malformed file (not an interrupt or an exit)."""
    if not isinstance(exc, Exception):
        return False
    return (
        isinstance(exc, _FILE_ERRORS)
        or type(exc) is Exception  # what the tokenizers library raises
        or type(exc).__module__.split(".")[0].lstrip("_") in _LIBRARIES
    )


@contextlib.contextmanager
def refused(what: str):
    """Turn what a library raises on a broken file into ``LayerscopeError("cannot load <what>: ...")``."""
    try:
        yield
    except LayerscopeError:
        raise
    except pickle.UnpicklingError as exc:
        raise LayerscopeError(
            f"refusing to load {what}: its pickled weights hold objects other than tensors, and layerscope "
            "only unpickles with torch.load(weights_only=True); convert the checkpoint to safetensors"
        ) from exc
    except RecursionError:
        raise LayerscopeError(f"cannot load {what}: a file of it is nested too deeply") from None
    except MemoryError:
        raise LayerscopeError(f"cannot load {what}: it needs more memory than this process may use") from None
    except Exception as exc:
        if not is_file_error(exc):
            raise
        raise LayerscopeError(f"cannot load {what}: {first_line(exc)}") from exc
