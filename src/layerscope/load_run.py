"""``load_run``: a saved run directory back as its result, so a run made on the command line continues in Python.

The config is rebuilt from ``run.json`` (its models as :class:`~layerscope.ModelSpec`), tables are read back
from CSV with the dtypes they were written with, ``.npy`` arrays are memory-mapped read-only, and the result
type's :meth:`~layerscope.experiment.Result.from_files` rebuilds the rest, so ``result.figure()``,
``result.table`` and the notebook display work as on the result the run returned. No model is loaded.
The directory is read as untrusted, through :class:`~layerscope.run_files.RunFiles`: whatever it holds ends in
a result or one :class:`LayerscopeError` line.

Example:
    >>> result = layerscope.load_run("runs/digits")      # written by `layerscope tokens --out runs/digits`
    >>> result.table.head()
    >>> result.figure()
"""

from __future__ import annotations

import dataclasses
import io
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import LayerscopeError, choices_text
from .experiment import ExperimentConfig, Result
from .model_spec import ModelSpec
from .registry import ENTRIES, reopened
from .run_files import LOAD_BUDGET_BYTES, ReadBudget, RunFiles, check_csv_columns
from .text_storage import python_strings

#: text columns of runs written before ``run.json`` recorded the dtypes (names like ``"0"`` stay text)
_TEXT_COLUMNS = ("layer", "stage", "token_ids", "input_ids", "prompt_ids", "removed_layers", "positions", "tokens")


def load_run(run_dir: str | os.PathLike, *, max_read_bytes: int = LOAD_BUDGET_BYTES) -> Result:
    """The result of the run saved in ``run_dir`` (tables, memory-mapped arrays, working figures).

    Every file is read through :class:`~layerscope.run_files.RunFiles`: regular files inside the directory only,
    each within its cap, ``.npy`` shapes checked against the file sizes, JSON nesting and integers bounded.

    Args:
        run_dir: a directory written by ``--out`` or ``result.save()`` (it holds ``run.json``).
        max_read_bytes: the most bytes read into memory in all (CSV, JSON, ``.npz``; ``.npy`` is memory-mapped).

    Raises:
        LayerscopeError: (one line) no finished run there, a run of an experiment that cannot be loaded, or a
            file that is not what the run wrote.
    """
    if isinstance(max_read_bytes, bool) or not isinstance(max_read_bytes, int) or max_read_bytes < 0:
        raise LayerscopeError(f"max_read_bytes={max_read_bytes!r} is not supported; give a whole number of bytes >= 0")
    try:
        path = Path(run_dir).expanduser()
    except (RuntimeError, TypeError) as exc:  # "~nouser/run": no such home directory
        raise LayerscopeError(f"{str(run_dir)!r} is not a usable path ({exc})") from None
    files = _run_files(path, max_read_bytes)
    record = _read_record(files)
    experiment = record.get("experiment")
    loadable = reopened()
    if not isinstance(experiment, str) or experiment not in loadable:
        raise LayerscopeError(
            f"{str(path)!r} holds a run of {_brief(experiment)}, which cannot be loaded; "
            f"loadable: {choices_text(loadable)}"
        )
    found = ENTRIES[experiment]
    config_class, result_class = found.config_class(), found.result_class()
    data = _field(record, "config", dict, files)
    from_record = getattr(config_class, "from_record", None)
    config = from_record(data) if from_record is not None else config_from_record(config_class, data)
    names = [name for name in _field(record, "files", list, files) if isinstance(name, str) and "/" not in name]
    dtypes = _table_dtypes(_field(record, "table_dtypes", dict, files), files)
    with python_strings():  # token text keeps its lone surrogates even where pyarrow is installed
        tables = {
            name[: -len(".csv")]: read_table(files, name, dtypes.get(name[: -len(".csv")]))
            for name in names
            if name.endswith(".csv")
        }
        arrays = {name.rsplit(".", 1)[0]: files.array(name) for name in names if name.endswith((".npy", ".npz"))}
        return _rebuild(result_class, config, tables, arrays, record, path)


def _run_files(path: Path, budget: int) -> RunFiles:
    if not path.is_dir():
        raise LayerscopeError(f"{str(path)!r} is not a directory; give a run directory (one holding run.json)")
    files = RunFiles(path, budget=ReadBudget(budget, "; load_run(..., max_read_bytes=N) reads more"))
    if "run.json" not in files.files and "run.json" not in files.refused:
        raise LayerscopeError(f"{str(path)!r} holds no run.json; give a finished run directory")
    return files


def _read_record(files: RunFiles) -> dict:
    label = files.label("run.json")
    try:
        record = files.json("run.json")
    except LayerscopeError as exc:
        raise LayerscopeError(f"{label} cannot be read: {str(exc).removeprefix(label + ': ')}") from None
    if not isinstance(record, dict):
        raise LayerscopeError(f"{label} is not a run record (a JSON object)")
    return record


def _field(record: dict, key: str, kind: type, files: RunFiles):
    """``record[key]`` when it is a ``kind`` (missing or null: an empty one); anything else is refused."""
    value = record.get(key)
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise LayerscopeError(
            f"{files.label('run.json')}: {key!r} is {_brief(value)}; a run record holds a JSON {kind.__name__} there"
        )
    return value


def _table_dtypes(dtypes: dict, files: RunFiles) -> dict[str, dict[str, str]]:
    for stem, columns in dtypes.items():
        if not isinstance(columns, dict) or not all(isinstance(d, str) for d in columns.values()):
            raise LayerscopeError(
                f"{files.label('run.json')}: table_dtypes[{stem!r}] is {_brief(columns)}; "
                "expected {column: dtype name}"
            )
    return dtypes


#: what a result's ``from_files`` raises on a record or table that is not what its experiment wrote
_REBUILD_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError, ArithmeticError)


def _rebuild(result_class, config, tables, arrays, record, path: Path) -> Result:
    """``result_class.from_files(...)``; a record or table that does not fit the result is one line."""
    import numpy as np

    try:
        return result_class.from_files(config, tables, arrays, record, path)
    except LayerscopeError:
        raise
    except (*_REBUILD_ERRORS, np.linalg.LinAlgError) as exc:
        what = f"{type(exc).__name__}: {_brief(exc.args[0] if len(exc.args) == 1 else exc, 120)}"
        raise LayerscopeError(
            f"{str(path)!r} does not hold a {record['experiment']} run that loads ({what}); "
            "its files are not what the run wrote"
        ) from None


def _brief(value: object, limit: int = 80) -> str:
    """``repr`` on one line, cut to ``limit`` characters (an integer too long to print is named as such)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return "(a value too large to print)"
    return text if len(text) <= limit else text[:limit] + "..."


# ----- configs ---------------------------------------------------------------------------------------
def config_from_record(config_class: type[ExperimentConfig], data: Mapping, **given) -> ExperimentConfig:
    """The frozen config from its ``run.json`` record: model specs rebuilt, lists back to tuples (``given``: fields
    already rebuilt)."""
    hints = typing.get_type_hints(config_class)
    values = dict(given)
    try:
        for f in dataclasses.fields(config_class):
            if f.init and f.name in data and f.name not in values:
                values[f.name] = _value(data[f.name], hints.get(f.name, Any))
        return config_class(**values)
    except LayerscopeError:
        raise
    except (TypeError, ValueError, AttributeError) as exc:
        message = " ".join(str(exc).split())
        message = message if len(message) <= 200 else message[:200] + "..."
        raise LayerscopeError(f"the config in run.json does not fit {config_class.__name__}: {message}") from None


def _value(value: Any, hint: Any) -> Any:
    """``value`` as JSON gave it, turned into what the annotation ``hint`` asks for: lists become tuples
    (configs are frozen), a model's record becomes a :class:`ModelSpec`."""
    if isinstance(value, Mapping) and _mentions_spec(hint):
        return ModelSpec(**value)
    if isinstance(value, list):
        sequence = next((a for a in _options(hint) if typing.get_origin(a) in (tuple, list)), None)
        inner = typing.get_args(sequence)[0] if sequence is not None and typing.get_args(sequence) else Any
        return tuple(_value(v, inner) for v in value)
    return value


def _options(hint: Any) -> list:
    """The alternatives of a union annotation (``X | None`` -> ``[X, NoneType]``), else ``[hint]``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [o for arg in typing.get_args(hint) for o in _options(arg)]
    return [hint]


def _mentions_spec(hint: Any) -> bool:
    return hint is ModelSpec or any(_mentions_spec(arg) for arg in typing.get_args(hint))


# ----- tables ----------------------------------------------------------------------------------------
def read_table(files: RunFiles, name: str, dtypes: Mapping[str, str] | None = None):
    """``<stem>.csv`` of ``files`` with the dtypes it was written with (as ``run.json`` records them); text stays
    text, and a recorded dtype is applied only when every value of its column converts to it exactly."""
    import pandas as pd

    data, label = files.read(name), files.label(name)
    check_csv_columns(data, label)
    try:
        if not dtypes:  # a run from before dtypes were recorded: read as pandas does, layer names as text
            header = pd.read_csv(io.BytesIO(data), nrows=0, encoding_errors="surrogatepass").columns
            return pd.read_csv(
                io.BytesIO(data), dtype={c: str for c in header if c in _TEXT_COLUMNS}, encoding_errors="surrogatepass"
            )
        crlf = data.split(b"\n", 1)[0].endswith(b"\r")  # rows end in "\n" (older runs left a "\r" in a token: data)
        frame = pd.read_csv(
            io.BytesIO(data),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding_errors="surrogatepass",
            **({} if crlf else {"lineterminator": "\n"}),
        )
    except (ValueError, UnicodeError, OverflowError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise LayerscopeError(f"{label}: not a readable CSV table ({_brief(str(exc), 160)})") from None
    for column in frame.columns:
        dtype = dtypes.get(str(column))
        if dtype is not None:
            frame[column] = _typed(frame[column], dtype, f"{label} column {_brief(str(column), 40)}")
    return frame


_TEXT_DTYPES = ("str", "object", "string")
_BOOLEANS = {"bool": {"True": True, "False": False}, "boolean": {"True": True, "False": False, "": None}}


def _typed(column, dtype: str, where: str):
    """The text ``column`` as ``dtype``, refused (one line) unless every value converts to it exactly."""
    import numpy as np
    import pandas as pd

    if dtype in _TEXT_DTYPES:
        return column.astype(dtype)
    if dtype == "str/na":
        return column.replace("", np.nan).astype("str")
    if dtype in _BOOLEANS:
        words = _BOOLEANS[dtype]
        bad = ~column.isin(list(words))
        if bad.any():
            _refuse(where, column[bad].iloc[0], dtype, "valid: " + ", ".join(repr(w) for w in words))
        return column.map(words).astype(dtype)
    try:
        target = pd.api.types.pandas_dtype(dtype)
    except (TypeError, ValueError):
        target = None
    kind = getattr(target, "kind", None)
    if kind not in ("i", "u", "f"):
        raise LayerscopeError(
            f"{where}: run.json's table_dtypes names {_brief(dtype, 40)}, which a table is not read as; "
            "valid: str, str/na, object, string, bool, boolean, integer and float dtypes"
        )
    missing = (column == "").to_numpy()
    numbers = pd.to_numeric(column.replace("", np.nan), errors="coerce")
    failed = numbers.isna().to_numpy() & ~missing
    if failed.any() or numbers.dtype.kind not in "iuf":
        bad = column[failed].iloc[0] if failed.any() else column[~missing].iloc[0]
        _refuse(where, bad, dtype, "not a number")
    nullable = isinstance(target, pd.api.extensions.ExtensionDtype)
    if missing.any() and kind in "iu" and not nullable:
        _refuse(where, "", dtype, "an empty cell in a column of whole numbers")
    present = numbers[~missing]
    if kind in "iu":
        info = np.iinfo(target.numpy_dtype if nullable else target)
        whole = present == np.floor(present) if present.dtype.kind == "f" else np.ones(len(present), bool)
        inside = (present >= info.min) & (present <= info.max)
        bad = ~(np.asarray(whole, bool) & np.asarray(inside, bool))
        if bad.any():
            _refuse(where, column[~missing][bad].iloc[0], dtype, f"whole numbers from {info.min} to {info.max}")
    converted = numbers.astype(target)
    if kind == "f":
        lost = np.isfinite(present.to_numpy(np.float64)) & ~np.isfinite(converted[~missing].to_numpy(np.float64))
        if lost.any():
            _refuse(where, column[~missing][lost].iloc[0], dtype, f"finite numbers within {dtype}'s range")
    return converted


def _refuse(where: str, value: str, dtype: str, valid: str):
    raise LayerscopeError(f"{where}: {_brief(value, 40)} is not a {dtype} (run.json's table_dtypes); {valid}")
