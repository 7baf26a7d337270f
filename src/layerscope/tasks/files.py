"""The user's own task from a CSV or JSONL file with ``prompt`` and ``answer`` (and optional ``group``)."""

from __future__ import annotations

import io
from pathlib import Path

from ..errors import LayerscopeError
from ..user_files import parse_json, read_user_text, text_lines
from .items import Task, TaskItem

REQUIRED = ("prompt", "answer")
SUFFIXES = (".csv", ".jsonl")


def load_task_file(path: str | Path) -> Task:
    """Read a task file: CSV with a header row, or JSON Lines with one object per line.

    Columns/keys: ``prompt`` and ``answer`` (required, non-empty), ``group`` (optional, for per-group
    accuracy). Values are kept verbatim as strings (a leading space in an answer matters to the tokenizer).

    Example:
        >>> task = load_task_file("capitals.csv")     # prompt,answer\\nThe capital of France is, Paris
        >>> task.items[0].answer                       # doctest: +SKIP
        ' Paris'
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise LayerscopeError(f"no such task file: {str(path)!r} (expected 'arithmetic' or a .csv/.jsonl file)")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise LayerscopeError(f"task file {str(path)!r} has suffix {suffix!r}; valid: {', '.join(SUFFIXES)}")
    text = read_user_text(path, "task file")
    if not text.strip():
        raise LayerscopeError(f"task file {str(path)!r} is empty; it needs columns {', '.join(REQUIRED)}")
    records = read_records(path, text, REQUIRED, "task")
    if not records:
        raise LayerscopeError(f"task file {str(path)!r} has a header but no rows")
    return Task(path.stem, [_item(record, where, path) for where, record in records])


def read_records(path: Path, text: str, required: tuple[str, ...], what: str) -> list[tuple[str, dict]]:
    """``(where, record)`` of each row of a CSV (header row) or JSON Lines ``text`` read from ``path``, every
    ``required`` column present (``where``: ``"row 2"``, ``"line 1"``); ``what`` names the file in messages
    (``"task"``, ``"pairs"``). Values stay verbatim: CSV cells as strings, JSON values as parsed."""
    if path.suffix.lower() == ".csv":
        return _csv_records(path, text, required, what)
    return _jsonl_records(path, text, required)


def _csv_records(path: Path, text: str, required: tuple[str, ...], what: str) -> list[tuple[str, dict]]:
    import pandas as pd

    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise LayerscopeError(
            f"cannot parse CSV {what} file {str(path)!r}: {str(exc).strip().splitlines()[0]}"
        ) from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise LayerscopeError(
            f"{what} file {str(path)!r} lacks column {missing[0]!r}; it has {', '.join(map(repr, frame.columns))}, "
            f"needs {', '.join(required)}"
        )
    return [(f"row {i + 2}", record) for i, record in enumerate(frame.to_dict("records"))]


def _jsonl_records(path: Path, text: str, required: tuple[str, ...]) -> list[tuple[str, dict]]:
    records = []
    for number, line in enumerate(text_lines(text), start=1):
        if not line.strip():
            continue
        record = parse_json(line, f"{str(path)!r} line {number}")
        if not isinstance(record, dict):
            raise LayerscopeError(f"{str(path)!r} line {number} is not a JSON object with keys {', '.join(required)}")
        missing = [key for key in required if key not in record]
        if missing:
            raise LayerscopeError(f"{str(path)!r} line {number} lacks key {missing[0]!r}; needs {', '.join(required)}")
        records.append((f"line {number}", record))
    return records


def _item(record: dict, where: str, path: Path) -> TaskItem:
    values = {}
    for key in REQUIRED:
        value = record[key]
        if not isinstance(value, (str, int, float)) or isinstance(value, bool) or str(value) == "":
            raise LayerscopeError(f"{str(path)!r} {where}: {key} {value!r} must be a non-empty string")
        values[key] = str(value)
    group = record.get("group", "")
    return TaskItem(values["prompt"], values["answer"], "" if group is None else str(group))
