"""The protocol every experiment follows: a frozen config, a model-free ``validate()``, a result that declares its outputs.

An experiment is three pieces in one module:

- ``XConfig(ExperimentConfig)``: a frozen, ``kw_only`` dataclass of everything the experiment needs,
  holding a :class:`~layerscope.model_spec.ModelSpec` as ``model`` (or ``models``); its ``validate()``
  needs no model and raises :class:`ConfigError` naming the parameter; ``run(model)`` does the work.
- ``XResult(Result)``: the outcome; it declares ``tables()``, ``arrays()``, ``figures()``, ``images()``,
  ``texts()`` and ``record()``, which :class:`~layerscope.rundir.RunDir` writes, and presents itself in a
  notebook (``__repr__``, ``_repr_html_``).
- a Python function (``layerscope.tokens(...)``) that builds the config and calls
  :func:`~layerscope.runner.execute`, as the command line does.

Importing this module imports no torch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import html
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import LayerscopeError, choices_text
from .model_spec import DTYPES, ModelSpec, parse_max_memory, shared_options, specs_argv
from .text_storage import python_strings

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd


def option(
    default: Any = dataclasses.MISSING,
    *,
    flag: str | None = None,
    positional: bool = False,
    join: str | None = None,
    help: str | None = None,
    metavar: str | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    choices: tuple | None = None,
    item: str | None = None,
    **kwargs,
):
    """A config field declared once: its command-line flag, help and checks.

    Args:
        default: the field's default (a tuple for sequences; ``default_factory=`` for others).
        flag: the option (default ``--field-name``); ``""``: no flag (Python only). A boolean that defaults
            to True names its negative switch (``flag="--no-fold"``).
        positional: the values are the command's positional arguments.
        join: a sequence given as one argument joined by this text (``--tokens a,b,c``) instead of a
            repeated flag.
        help, metavar: the command line's help for the option.
        minimum, maximum: a count: :meth:`ExperimentConfig.validate` refuses anything but an integer (not a
            bool) from ``minimum`` to ``maximum`` (None stays allowed where it is the default).
        choices: the valid values, checked by :meth:`ExperimentConfig.validate`; a ``Literal`` annotation
            gives them too.
        item: the metavar of one more optional positional argument added to this sequence (``echo FILE``).
    """
    metadata = {
        "flag": flag,
        "positional": positional,
        "join": join,
        "help": help,
        "metavar": metavar,
        "minimum": minimum,
        "maximum": maximum,
        "choices": choices,
        "item": item,
    }
    if isinstance(default, (list, dict, set)):
        raise TypeError("use default_factory for mutable defaults")
    return field(default=default, metadata=metadata, **kwargs)


def field_default(f: dataclasses.Field) -> Any:
    """A field's default value (``dataclasses.MISSING`` when it has none)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


@functools.cache
def field_hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of a config class's fields."""
    return typing.get_type_hints(cls)


def literal_choices(hint: Any) -> tuple | None:
    """The values of a ``Literal`` annotation (also inside ``X | None``), else None."""
    if typing.get_origin(hint) is typing.Literal:
        return typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            found = literal_choices(arg)
            if found is not None:
                return found
    return None


def field_choices(cls: type, f: dataclasses.Field) -> tuple | None:
    """The valid values of a field: its ``option(choices=...)``, else its ``Literal`` annotation's."""
    return f.metadata.get("choices") or literal_choices(field_hints(cls).get(f.name))


class ConfigError(LayerscopeError):
    """A config value that is not valid; its message names the Python parameter or, from the CLI, the flag.

    Example:
        >>> str(ConfigError("dims", 4, "is not supported; valid: 2, 3"))
        'dims=4 is not supported; valid: 2, 3'
        >>> ConfigError("dims", 4, "is not supported; valid: 2, 3", flag="--dims").cli_message()
        '--dims 4 is not supported; valid: 2, 3'
    """

    def __init__(self, param: str, value: Any, problem: str, *, flag: str | None = None):
        self.param, self.value, self.problem = param, value, problem
        self.flag = flag if flag is not None else "--" + param.replace("_", "-")
        super().__init__(f"{param}={value!r} {problem}")

    def cli_message(self) -> str:
        value = self.value
        if isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        shown = repr(value) if isinstance(value, str) and (not value or " " in value) else value
        return f"{self.flag} {shown} {self.problem}" if self.flag else f"{str(value)!r} {self.problem}"


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """The base of every experiment's config: frozen, keyword-only, model-free validation.

    Subclasses set ``experiment`` (the command's name) and define ``validate()`` and ``run(model)``.
    """

    experiment: ClassVar[str] = ""
    #: True when ``run`` loads its model itself (a sentence-embedding model, or one model after another);
    #: the runner then loads nothing. A config with a ``resume_dir`` field gets the run directory there.
    loads_own_models: ClassVar[bool] = False
    #: False for an experiment with no command of its own (Python only): ``run.json`` records no command
    has_command: ClassVar[bool] = True
    #: the options of the ``model`` field's :class:`ModelSpec` the command line gives beside ``--model``
    model_options: ClassVar[tuple[str, ...]] = (
        "dtype",
        "device_map",
        "max_memory",
        "offload_dir",
        "trust_remote_code",
    )

    # ----- validation ------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check everything that needs no model; raise :class:`ConfigError` naming the bad parameter.

        Subclasses call ``super().validate()`` first: it checks every field declared with ``minimum``,
        ``maximum`` or ``choices`` (or a ``Literal`` annotation), then the model specs; a subclass checks only
        what involves several fields or outside things (files, sets).
        """
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.default is None:
                continue
            self.check_count(f)
            choices = field_choices(type(self), f)
            if choices is not None and value not in choices:
                raise self.error(f.name, value, f"is not supported; valid: {choices_text(choices)}")
        for spec in self.model_specs():
            if spec.dtype is not None and spec.dtype not in DTYPES:
                raise ConfigError("dtype", spec.dtype, f"is not supported; valid: {choices_text(DTYPES)}")
            try:
                parse_max_memory(spec.max_memory)
            except ValueError as exc:
                raise ConfigError("max_memory", spec.max_memory, str(exc)) from None

    def check_count(self, f: dataclasses.Field) -> None:
        """Raise a :class:`ConfigError` naming field ``f`` unless it holds an integer (not a bool) within its
        ``option(minimum=..., maximum=...)``."""
        low, high = f.metadata.get("minimum"), f.metadata.get("maximum")
        if low is None and high is None:
            return
        value = getattr(self, f.name)
        integer = isinstance(value, int) and not isinstance(value, bool)
        if high is not None and (not integer or value < low or value > high):
            raise self.error(f.name, value, f"is not supported; valid: {low} to {high}")
        if not integer or value < low:
            raise self.error(f.name, value, f"must be at least {low}")

    def error(self, param: str, value: Any, problem: str) -> ConfigError:
        """A :class:`ConfigError` for field ``param``, carrying that field's flag."""
        return ConfigError(param, value, problem, flag=self.flag_of(param))

    @contextlib.contextmanager
    def checking(self, param: str):
        """Turn a :class:`LayerscopeError` raised in the block into a :class:`ConfigError` naming ``param``."""
        try:
            yield
        except ConfigError:
            raise
        except LayerscopeError as exc:
            raise self.error(param, getattr(self, param, None), f"is not valid: {exc}") from None

    @classmethod
    def flag_of(cls, param: str) -> str:
        for f in fields(cls):
            if f.name == param:
                flag = f.metadata.get("flag")
                if f.metadata.get("positional"):
                    return ""
                return flag if flag is not None else "--" + param.replace("_", "-")
        return "--" + param.replace("_", "-")

    # ----- models --------------------------------------------------------------------------------
    def model_specs(self) -> tuple[ModelSpec, ...]:
        """The models this run loads (``model`` and/or ``models`` fields)."""
        specs: list[ModelSpec] = []
        for name in ("model", "models", "compare_model"):
            value = getattr(self, name, None)
            if isinstance(value, ModelSpec):
                specs.append(value)
            elif isinstance(value, (tuple, list)):
                specs.extend(v for v in value if isinstance(v, ModelSpec))
        return tuple(specs)

    # ----- the work --------------------------------------------------------------------------------
    def run(self, model=None) -> Result:  # pragma: no cover - every experiment overrides it
        raise NotImplementedError

    # ----- records ---------------------------------------------------------------------------------
    def to_record(self) -> dict:
        """The config as plain JSON-able data (for ``run.json``)."""
        return dataclasses.asdict(self)

    def command(self) -> list[str]:
        """The command line that reproduces this run (without ``--out``), rebuilt from the fields.

        A field is given only when it differs from its default. Lists repeat their flag; booleans are
        switches (a field that defaults to True names its negative flag, ``option(True, flag="--no-fold")``); a ``ModelSpec`` gives ``--model`` and its options; fields with ``flag=""`` are Python-only.
        """
        argv = ["layerscope", self.experiment]
        positional: list[str] = []
        shared = shared_options(self.model_specs())  # given once; a model's other options travel with it
        for f in fields(self):
            value = getattr(self, f.name)
            if f.default is not dataclasses.MISSING and value == f.default:
                continue
            if f.default_factory is not dataclasses.MISSING and value == f.default_factory():
                continue
            if f.metadata.get("positional"):
                positional.extend(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
                continue
            flag = self.flag_of(f.name)
            if not flag:
                continue
            if isinstance(value, bool):  # a switch, given only when it differs from the default
                argv.append(flag)  # so a field defaulting to True has a flag like ``--no-fold``
                continue
            if f.metadata.get("join") and isinstance(value, (list, tuple)):
                value = f.metadata["join"].join(map(str, value))
            if isinstance(value, ModelSpec) and f.name not in ("model", "models"):  # e.g. --compare-model
                argv.extend([flag, value.value_beside(shared)])
                continue
            argv.extend(_flag_args(flag, value, shared))
        if any(p.startswith("-") for p in positional):
            positional.insert(0, "--")  # what follows is not an option
        return argv + positional


def _flag_args(flag: str, value: Any, shared: dict | None = None) -> list[str]:
    if isinstance(value, ModelSpec):
        return specs_argv([value], flag, shared)
    if isinstance(value, bool):
        return [flag] if value else []
    if value is None:
        return []
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, ModelSpec) for v in value):
        return specs_argv(value, flag, shared)
    if isinstance(value, (list, tuple)):
        return [arg for item in value for arg in _flag_args(flag, item)]
    if isinstance(value, Mapping):
        return [flag, ",".join(str(v) for words in value.values() for v in words)]
    text = str(value)
    return [f"{flag}={text}"] if text.startswith("-") else [flag, text]  # "--ops=-+": not read as an option


@dataclass(kw_only=True, repr=False)
class Result:
    """The base of every experiment's result.

    Attributes:
        config: the config that produced it.
        models: ``run.json`` records of the models used (see :func:`layerscope.rundir.model_record`).
        timings: seconds per phase (``load``, ``compute``, ..., ``write``).
    """

    config: ExperimentConfig
    models: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    #: the file a person opens first (printed by the command line)
    main_file: ClassVar[str] = "index.html"

    def __init_subclass__(cls, **kwargs) -> None:
        """A subclass's own :meth:`tables` builds its frames with Python string storage, so token text keeps its
        lone surrogates where pyarrow is installed (:mod:`layerscope.text_storage`)."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("tables")
        if own is not None and not getattr(own, "python_strings", False):

            @functools.wraps(own)
            def tables(self) -> dict[str, pd.DataFrame]:
                with python_strings():
                    return own(self)

            tables.python_strings = True
            cls.tables = tables

    # ----- what the run directory holds (override what applies) ------------------------------------
    def tables(self) -> dict[str, pd.DataFrame]:
        """``{file stem: DataFrame}``, written as ``<stem>.csv``."""
        return {}

    def arrays(self) -> dict[str, np.ndarray]:
        """``{file stem: array}``, written as ``<stem>.npy`` (``<stem>.npz`` for a dict of arrays)."""
        return {}

    def figures(self) -> dict[str, Callable[[], Any]]:
        """``{file stem: () -> plotly figure}``, written as ``<stem>.html`` (offline) + ``<stem>.plotly.json``."""
        return {}

    def images(self) -> dict[str, Callable[[], Any]]:
        """``{relative path without .png: () -> matplotlib figure}``, written as PNG."""
        return {}

    def texts(self) -> dict[str, str]:
        """``{file name: text}`` (markdown tables, whole HTML pages)."""
        return {}

    def record(self) -> dict:
        """Key numbers for ``run.json`` (beside config, models, versions and timings)."""
        return {}

    def findings(self) -> dict[str, str]:
        """``{figure stem: one sentence}`` read from the numbers; :meth:`record` stores it as ``findings`` and
        ``layerscope report`` shows each sentence under its figure."""
        return {}

    def summary(self) -> list[str]:
        """A few lines of key numbers (the CLI prints them, ``__repr__`` shows them)."""
        return []

    # ----- loading back (see :func:`layerscope.load_run`) --------------------------------------------
    @classmethod
    def from_files(
        cls,
        config: ExperimentConfig,
        tables: dict[str, pd.DataFrame],
        arrays: dict[str, Any],
        record: dict,
        run_dir: Path,
    ) -> Result:
        """The result of a saved run, rebuilt from its files so its figures and tables work again.

        Args:
            config: the config rebuilt from ``run.json``.
            tables: ``{stem: DataFrame}`` read back from ``<stem>.csv`` with the dtypes they were written with.
            arrays: ``{stem: array}``: ``<stem>.npy`` memory-mapped (read-only), ``<stem>.npz`` as a lazy mapping.
            record: the whole ``run.json``.
            run_dir: the run directory.
        """
        raise LayerscopeError(f"a saved {config.experiment!r} run cannot be loaded back")

    @staticmethod
    def saved(record: dict) -> dict:
        """``models`` and ``timings`` from a ``run.json`` record, as :meth:`from_files` passes them on."""
        return {"models": list(record.get("models") or []), "timings": dict(record.get("timings_s") or {})}

    def table_dtypes(self) -> dict[str, dict[str, str]]:
        """``{stem: {column: dtype}}`` of :meth:`tables`, recorded in ``run.json`` so a load restores them.

        A text column that holds missing values is ``"str/na"``: its empty cells are read back as missing.
        """
        out = {}
        for stem, frame in self.tables().items():
            dtypes = {}
            for column in frame.columns:
                dtype = str(frame[column].dtype)
                if dtype in ("str", "object", "string") and frame[column].isna().any():
                    dtype = "str/na"
                dtypes[str(column)] = dtype
            out[stem] = dtypes
        return out

    # ----- presentation ----------------------------------------------------------------------------
    @property
    def model_names(self) -> list[str]:
        return [m.get("display_name") or m.get("name", "?") for m in self.models]

    def headline(self) -> str:
        models = ", ".join(self.model_names) or "no model"
        return f"{type(self).__name__}({self.config.experiment} on {models})"

    def main_table(self) -> pd.DataFrame | None:
        tables = self.tables()
        return next(iter(tables.values()), None) if tables else None

    def main_figure(self):
        figures = self.figures()
        return next(iter(figures.values()))() if figures else None

    def __repr__(self) -> str:
        lines = [self.headline()]
        for stem, frame in self.tables().items():
            lines.append(
                f"  {stem}: {len(frame)} rows x {len(frame.columns)} columns ({', '.join(map(str, frame.columns[:8]))}{', ...' if len(frame.columns) > 8 else ''})"
            )
        for stem, array in self.arrays().items():
            shape = getattr(array, "shape", None)
            if shape is not None:
                lines.append(f"  {stem}: array {tuple(shape)} {array.dtype}")
            elif isinstance(array, Mapping):
                lines.append(
                    f"  {stem}: {len(array)} arrays ({', '.join(list(array)[:6])}{', ...' if len(array) > 6 else ''})"
                )
        lines += [f"  {line}" for line in _shortened(self.summary())]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        parts = [f"<b>{html.escape(self.headline())}</b>"]
        summary = _shortened(self.summary())
        if summary:
            parts.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in summary) + "</ul>")
        figure = self.main_figure()
        if figure is not None:
            parts.append(_figure_html(figure))
        table = self.main_table()
        if table is not None:
            parts.append(table.head(8).to_html(index=False, border=0, float_format=lambda v: f"{v:.4g}"))
        return "\n".join(parts)

    # ----- writing ---------------------------------------------------------------------------------
    def save(self, out: str | Path | None = None, *, force: bool = False) -> Path:
        """Write the run directory (default ``runs/<experiment>-<time>``); returns its path.

        A directory that holds another run or unrelated files is refused unless ``force``, which empties it first.
        """
        from .rundir import RunDir, default_run_dir

        return RunDir(out if out is not None else default_run_dir(self.config.experiment)).write(self, force=force)

    def iter_outputs(self) -> Iterator[str]:
        """The names of the files :meth:`save` writes (figures and images only by stem)."""
        yield from (f"{stem}.csv" for stem in self.tables())
        yield from (f"{stem}.npz" if isinstance(a, dict) else f"{stem}.npy" for stem, a in self.arrays().items())
        yield from (f"{stem}.html" for stem in self.figures())
        yield from (f"{stem}.png" for stem in self.images())
        yield from self.texts()


#: the most summary lines ``__repr__`` and ``_repr_html_`` show (a long prompt file gives one line per prompt)
SUMMARY_LINES = 8


def _shortened(lines: list[str]) -> list[str]:
    if len(lines) <= SUMMARY_LINES:
        return lines
    return [*lines[: SUMMARY_LINES - 1], f"... {len(lines) - SUMMARY_LINES + 1} more lines (see .summary())"]


def _figure_html(figure) -> str:
    """A plotly figure as an HTML fragment: plotly.js with the notebook's first figure only (works offline), or
    from the CDN where the user opted in (:mod:`layerscope.notebook`)."""
    from .notebook import figure_html

    return figure_html(figure)
