"""``load_run``: a saved run directory back as its result, so a run made on the command line continues in Python.

The config is rebuilt from ``run.json`` (its models as :class:`~layerscope.ModelSpec`), tables are read back
from CSV with the dtypes they were written with, ``.npy`` arrays are memory-mapped read-only, and the result
type's :meth:`~layerscope.experiment.Result.from_files` rebuilds the rest, so ``result.figure()``,
``result.table`` and the notebook display work as on the result the run returned. No model is loaded.

Example:
    >>> result = layerscope.load_run("runs/digits")      # written by `layerscope tokens --out runs/digits`
    >>> result.table.head()
    >>> result.figure()
"""

from __future__ import annotations

import dataclasses
import json
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

#: text columns of runs written before ``run.json`` recorded the dtypes (names like ``"0"`` stay text)
_TEXT_COLUMNS = ("layer", "stage", "token_ids", "input_ids", "prompt_ids", "removed_layers", "positions", "tokens")


def load_run(run_dir: str | os.PathLike) -> Result:
    """The result of the run saved in ``run_dir`` (tables, memory-mapped arrays, working figures).

    Args:
        run_dir: a directory written by ``--out`` or ``result.save()`` (it holds ``run.json``).

    Raises:
        LayerscopeError: (one line) no finished run there, or a run of an experiment that cannot be loaded.
    """
    path = Path(run_dir).expanduser()
    record = _read_record(path)
    experiment = record.get("experiment")
    loadable = reopened()
    if experiment not in loadable:
        raise LayerscopeError(
            f"{str(path)!r} holds a run of {experiment!r}, which cannot be loaded; loadable: {choices_text(loadable)}"
        )
    found = ENTRIES[experiment]
    config_class = found.config_class()
    data = record.get("config") or {}
    from_record = getattr(config_class, "from_record", None)
    config = from_record(data) if from_record is not None else config_from_record(config_class, data)
    files = [name for name in record.get("files") or [] if isinstance(name, str)]
    dtypes = record.get("table_dtypes") or {}
    tables = {
        name[: -len(".csv")]: read_table(path / name, dtypes.get(name[: -len(".csv")]))
        for name in files
        if name.endswith(".csv") and "/" not in name
    }
    arrays = {
        name.rsplit(".", 1)[0]: read_array(path / name)
        for name in files
        if name.endswith((".npy", ".npz")) and "/" not in name
    }
    return found.result_class().from_files(config, tables, arrays, record, path)


def _read_record(path: Path) -> dict:
    if not path.is_dir():
        raise LayerscopeError(f"{str(path)!r} is not a directory; give a run directory (one holding run.json)")
    try:
        record = json.loads((path / "run.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LayerscopeError(f"{str(path)!r} holds no run.json; give a finished run directory") from None
    except (OSError, ValueError) as exc:
        raise LayerscopeError(f"{str(path / 'run.json')!r} cannot be read: {exc}") from None
    if not isinstance(record, dict):
        raise LayerscopeError(f"{str(path / 'run.json')!r} is not a run record")
    return record


# ----- configs ---------------------------------------------------------------------------------------
def config_from_record(config_class: type[ExperimentConfig], data: Mapping, **given) -> ExperimentConfig:
    """The frozen config from its ``run.json`` record: model specs rebuilt, lists back to tuples (``given``: fields
    already rebuilt)."""
    hints = typing.get_type_hints(config_class)
    values = dict(given)
    for f in dataclasses.fields(config_class):
        if f.init and f.name in data and f.name not in values:
            values[f.name] = _value(data[f.name], hints.get(f.name, Any))
    try:
        return config_class(**values)
    except TypeError as exc:
        raise LayerscopeError(f"the config in run.json does not fit {config_class.__name__}: {exc}") from None


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


# ----- tables and arrays -----------------------------------------------------------------------------
def read_table(path: Path, dtypes: Mapping[str, str] | None = None):
    """``<stem>.csv`` with the dtypes it was written with (as ``run.json`` records them); text stays text."""
    import pandas as pd

    if not dtypes:  # a run from before dtypes were recorded: read as pandas does, layer names as text
        header = pd.read_csv(path, nrows=0, encoding_errors="surrogatepass").columns
        return pd.read_csv(path, dtype={c: str for c in header if c in _TEXT_COLUMNS}, encoding_errors="surrogatepass")
    with open(path, "rb") as handle:  # rows end in "\n" (older runs left a "\r" in a token unquoted: data)
        crlf = handle.readline().endswith(b"\r\n")
    options = {} if crlf else {"lineterminator": "\n"}
    frame = pd.read_csv(
        path, dtype=str, keep_default_na=False, na_filter=False, encoding_errors="surrogatepass", **options
    )
    for column in frame.columns:
        dtype = dtypes.get(str(column))
        if dtype is not None:
            frame[column] = _typed(frame[column], dtype)
    return frame


def _typed(column, dtype: str):
    import numpy as np
    import pandas as pd

    if dtype in ("str", "object", "string"):
        return column.astype(dtype)
    if dtype == "str/na":
        return column.replace("", np.nan).astype("str")
    if dtype == "bool":
        return column.map({"True": True, "False": False}).astype(bool)
    if dtype == "boolean":
        return column.map({"True": True, "False": False, "": pd.NA}).astype("boolean")
    try:
        return pd.to_numeric(column.replace("", np.nan)).astype(dtype)
    except (ValueError, TypeError):
        return column  # a dtype this reader does not know: the text as written


def read_array(path: Path):
    """``<stem>.npy`` memory-mapped read-only; ``<stem>.npz`` as a lazy mapping (npz cannot be memory-mapped)."""
    import numpy as np

    if path.suffix == ".npz":
        return np.load(path)
    try:
        return np.load(path, mmap_mode="r")
    except ValueError:  # e.g. an empty array
        return np.load(path)
