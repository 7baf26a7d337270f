"""``ModelSpec``: one way to say "which model", the same object in the CLI, the Python API and tour.

Importing this module imports no torch; :meth:`ModelSpec.load` does.

Example:
    >>> spec = ModelSpec("path/to/model.gguf", dtype="bfloat16")
    >>> spec.argv()
    ['--model', 'path/to/model.gguf', '--dtype', 'bfloat16']
    >>> ModelSpec("path/to/model.gguf", name="small").argv()     # the name travels as NAME=SOURCE
    ['--model', 'small=path/to/model.gguf']
    >>> model = spec.load()
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .errors import LayerscopeError, choices_text

if TYPE_CHECKING:  # pragma: no cover
    from .models import Model

DType = Literal["float32", "bfloat16", "float16", "auto"]
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16", "auto")


def is_plain_name(text: str) -> bool:
    """A display name that ``NAME=SOURCE`` can carry: not empty, no ``=``, ``/`` or ``\\``, no surrounding
    space, and not starting like a path (``.``, ``~``) or an option (``-``)."""
    return (
        bool(text)
        and text == text.strip()
        and not any(c in text for c in "=/\\")
        and not text.startswith((".", "~", "-"))
    )


def split_named_source(text: str) -> tuple[str | None, str]:
    """``"NAME=SOURCE"`` -> ``(NAME, SOURCE)`` when the part before ``=`` is a plain name and the whole text is
    not an existing path; anything else -> ``(None, text)``. Raises ``ValueError`` for ``NAME=`` and ``=SOURCE``.

    Example:
        >>> split_named_source("small=runs/model.gguf")
        ('small', 'runs/model.gguf')
    """
    if "=" not in text or os.path.exists(os.path.expanduser(text)):
        return None, text
    name, _, source = text.partition("=")
    if not name.strip():
        raise ValueError(f"{text!r} has no name before '='; write NAME=SOURCE")
    if not is_plain_name(name):
        return None, text
    if not source.strip():
        raise ValueError(f"{text!r} has no source after '='; write NAME=SOURCE (SOURCE may be 'default')")
    return name, source


@dataclass(frozen=True)
class ModelSpec:
    """Which model to load, and how.

    Attributes:
        source: ``None`` for the embedded default model (Gemma 3 270M); a ``.gguf`` file; a local Hugging
            Face, MLX-quantized or sentence-transformers directory; or a hub id.
        name: the display name in tables and legends (None: the loaded model's own name).
        dtype: ``float32`` (exact on CPU; None means that), ``bfloat16``, ``float16`` or ``auto``.
        device_map: handed to accelerate (``"auto"`` spreads a model over the devices there are).
        trust_remote_code: let the model repository run its own Python code.
    """

    source: str | None = None
    name: str | None = None
    dtype: DType | None = None
    device_map: str | None = None
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if self.source is not None:
            text = os.fspath(self.source)
            object.__setattr__(self, "source", None if text == "default" else text)

    @classmethod
    def of(cls, value: ModelSpec | Model | str | os.PathLike | None, **options) -> ModelSpec:
        """A spec from what a Python user passes as ``model=``: a spec, a loaded model, a source or None."""
        if isinstance(value, ModelSpec):
            return value
        if value is None or isinstance(value, (str, os.PathLike)):
            return cls(source=None if value is None else os.fspath(value), **options)
        source = getattr(value, "source", None)
        if isinstance(source, str):  # a loaded Model: its source, and its dtype unless float32
            dtype = str(getattr(value, "dtype", "float32")).replace("torch.", "")
            if dtype != "float32" and dtype in DTYPES and "dtype" not in options:
                options["dtype"] = dtype
            return cls(source=source, **options)
        raise LayerscopeError(
            f"model={value!r} is not a model; give a source (hub id, directory, .gguf file), None for the "
            "default model, a ModelSpec or a model from layerscope.load_model()"
        )

    def validate(self) -> None:
        """Check the options that need no loading."""
        if self.dtype is not None and self.dtype not in DTYPES:
            raise LayerscopeError(f"dtype {self.dtype!r} is not supported; valid: {choices_text(DTYPES)}")
        if self.name is not None and not is_plain_name(self.name):
            raise LayerscopeError(
                f"model name {self.name!r} is not a plain name: give one without '=', '/' or '\\', surrounding "
                "spaces, or a leading '.', '~' or '-'"
            )

    @property
    def label(self) -> str:
        """What the user asked for: the source, or ``default``."""
        return self.source or "default"

    @property
    def value(self) -> str:
        """The ``--model`` value that gives this model and its name: ``NAME=SOURCE``, or the source alone."""
        return f"{self.name}={self.label}" if self.name else self.label

    def load(self) -> Model:
        """Load the model (see :func:`layerscope.load_model`)."""
        from .models import load_model

        self.validate()
        model = load_model(
            self.source, dtype=self.dtype, device_map=self.device_map, trust_remote_code=self.trust_remote_code
        )
        if self.name:
            model.name = self.name
        return model

    def load_timed(self, timings: dict[str, float]) -> Model:
        """:meth:`load`, adding the seconds it took to ``timings["load"]``."""
        start = time.perf_counter()
        model = self.load()
        timings["load"] = timings.get("load", 0.0) + time.perf_counter() - start
        return model

    def loaded(self, model: Model | None, timings: dict[str, float]) -> Model:
        """``model`` when one is given, else :meth:`load_timed`."""
        return model if model is not None else self.load_timed(timings)

    def argv(self, flag: str = "--model") -> list[str]:
        """The command-line options that give this spec (``[]`` for the default model, default options)."""
        args = [] if self.source is None and self.name is None else [flag, self.value]
        return args + self.option_argv()

    def option_argv(self) -> list[str]:
        """The options after ``--model``: ``--dtype``, ``--device-map``, ``--trust-remote-code``."""
        args: list[str] = []
        if self.dtype is not None:
            args += ["--dtype", self.dtype]
        if self.device_map is not None:
            args += ["--device-map", self.device_map]
        if self.trust_remote_code:
            args.append("--trust-remote-code")
        return args


def specs_argv(specs, flag: str = "--model") -> list[str]:
    """Options for several models: ``--model`` each (``default`` for the default model), then the shared
    options once (the command line gives one ``--dtype``/``--device-map``/``--trust-remote-code`` for all).
    """
    specs = list(specs)
    if not specs:
        return []
    if len(specs) == 1:
        return specs[0].argv(flag)
    args = [arg for spec in specs for arg in (flag, spec.value)]
    return args + specs[0].option_argv()


def unique_name(name: str, taken: set[str] | list[str] | dict) -> str:
    """``name``, or ``name (2)``, ``name (3)``, ... when it is taken: the one format for duplicate names."""
    candidate, k = name, 2
    while candidate in taken:
        candidate, k = f"{name} ({k})", k + 1
    return candidate
