"""``ModelSpec``: one way to say "which model", the same object in the CLI, the Python API and tour.

A spec is a plain description: it imports no torch and nothing of ``models/`` or ``checkpoints/``;
:func:`layerscope.models.loading.load_spec` loads it.

Example:
    >>> spec = ModelSpec("path/to/model.gguf", dtype="bfloat16")
    >>> spec.argv()
    ['--model', 'path/to/model.gguf', '--dtype', 'bfloat16']
    >>> ModelSpec("path/to/model.gguf", name="small").argv()     # the name travels as NAME=SOURCE
    ['--model', 'small=path/to/model.gguf']
    >>> model = load_spec(spec)                                   # layerscope.models.loading
    >>> ModelSpec("org/big", device_map="auto", max_memory={"cpu": "2GiB"}, offload_dir="offload").option_argv()
    ['--device-map', 'auto', '--max-memory', 'cpu=2GiB', '--offload-dir', 'offload']
    >>> specs_argv([ModelSpec("m.gguf", name="f32"), ModelSpec("m.gguf", name="bf16", dtype="bfloat16")])
    ['--model', 'f32=m.gguf', '--model', 'bf16=m.gguf@dtype=bfloat16']
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .errors import LayerscopeError, choices_text

if TYPE_CHECKING:  # pragma: no cover
    from .models import Model

DType = Literal["float32", "bfloat16", "float16", "auto"]
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16", "auto")


def parse_max_memory(value: str | dict | None) -> dict | None:
    """``--max-memory`` as accelerate's ``max_memory`` dict: ``"0=20GiB,cpu=30GiB"`` -> ``{0: 21474836480,
    "cpu": 32212254720}`` (bytes). Devices: ``cpu``, ``mps``, a GPU index ``0`` or ``cuda:0``; sizes:
    bytes or ``512MB``, ``2GiB``, ``1.5GB``. A dict is checked the same way. Raises ``ValueError`` naming the
    bad part.

    Example:
        >>> parse_max_memory("cpu=2GiB")
        {'cpu': 2147483648}
    """
    if value is None:
        return None
    if isinstance(value, dict):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        text = str(value).strip()
        if not text:
            raise ValueError("is empty; give DEVICE=SIZE[,DEVICE=SIZE...], e.g. cpu=2GiB or 0=20GiB,cpu=30GiB")
        pairs = []
        for item in text.split(","):
            device, sep, size = item.partition("=")
            if not sep or not device.strip() or not size.strip():
                raise ValueError(f"has {item.strip()!r}; write DEVICE=SIZE, e.g. cpu=2GiB or 0=20GiB,cpu=30GiB")
            pairs.append((device.strip(), size.strip()))
    result: dict = {}
    for device, size in pairs:
        key = _device_key(device)
        if key in result:
            raise ValueError(f"names device {device!r} twice")
        result[key] = _size_bytes(size)
    if not result:
        raise ValueError("names no device; give DEVICE=SIZE, e.g. cpu=2GiB")
    return result


def max_memory_text(value: str | dict | None) -> str | None:
    """The ``--max-memory`` text of a value: a dict -> ``"0=20GiB,cpu=30GiB"``; a text is kept as given."""
    if value is None or isinstance(value, str):
        return value
    return ",".join(f"{k}={_size_text(v)}" for k, v in value.items())


def _device_key(text: str) -> int | str:
    name = text.strip().lower()
    if name.startswith("cuda:"):
        name = name[len("cuda:") :]
    if name.isdigit():
        return int(name)
    if name in ("cpu", "mps"):
        return name
    raise ValueError(
        f"has device {text!r}; valid: cpu, mps, a GPU index (0, 1, ...) or cuda:N (disk takes what does not fit)"
    )


_UNITS = {"tib": 1 << 40, "gib": 1 << 30, "mib": 1 << 20, "kib": 1 << 10, "tb": 10**12, "gb": 10**9}
_UNITS |= {"mb": 10**6, "kb": 10**3, "t": 1 << 40, "g": 1 << 30, "m": 1 << 20, "k": 1 << 10, "b": 1}


def _size_bytes(text: str) -> int:
    value = str(text).strip()
    number, factor = value.lower().replace(" ", ""), 1
    for suffix, size in _UNITS.items():
        if number.endswith(suffix):
            number, factor = number[: -len(suffix)], size
            break
    try:
        amount = float(number)
    except ValueError:
        raise ValueError(f"has size {value!r}, not a size; give bytes or e.g. 512MiB, 2GiB, 1.5GB") from None
    if not amount > 0 or amount == float("inf"):
        raise ValueError(f"has size {value!r}; give a size above 0")
    return int(amount * factor)


def _size_text(value) -> str:
    return str(value).replace(" ", "")


def is_plain_name(text: str) -> bool:
    """A display name that ``NAME=SOURCE`` can carry: not empty, printable (no newline, escape or other control
    character), no ``=``, ``/`` or ``\\``, no surrounding space, and not starting like a path (``.``, ``~``) or
    an option (``-``)."""
    return (
        bool(text)
        and text.isprintable()
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


#: the options a ``--model`` value may carry after ``@`` (``NAME=SOURCE@dtype=bfloat16,device_map=auto``)
MODEL_OPTIONS: tuple[str, ...] = ("dtype", "device_map", "trust_remote_code", "offload_dir", "max_memory")
_TRUE, _FALSE = ("", "true", "yes", "1"), ("false", "no", "0")


def split_model_options(text: str) -> tuple[str, dict]:
    """``"SOURCE@KEY=VALUE,..."`` -> ``(SOURCE, {KEY: VALUE})``: the options one ``--model`` carries for itself.

    Keys: ``dtype``, ``device_map``, ``trust_remote_code`` (bare, or ``=true``/``=false``), ``offload_dir``,
    ``max_memory`` (its own commas kept: ``max_memory=cpu=2GiB,0=20GiB``); ``-`` may stand for ``_``. A text
    that is an existing path, or whose part after the last ``@`` names no option, is a source alone. Raises
    ``ValueError`` naming an unknown option or an empty value.

    Example:
        >>> split_model_options("m.gguf@dtype=bfloat16,device_map=auto")
        ('m.gguf', {'dtype': 'bfloat16', 'device_map': 'auto'})
    """
    if "@" not in text or os.path.exists(os.path.expanduser(text)):
        return text, {}
    source, _, tail = text.rpartition("@")
    items = tail.split(",")
    first = items[0].partition("=")[0].strip().replace("-", "_")
    if first not in MODEL_OPTIONS and "=" not in items[0]:
        return text, {}  # an '@' of the source itself
    options: dict = {}
    last = None
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if key not in MODEL_OPTIONS:
            if last == "max_memory" and sep:  # a further DEVICE=SIZE of max_memory
                options[last] += "," + item.strip()
                continue
            raise ValueError(
                f"{text!r} has model option {key!r} after '@'; valid: {', '.join(MODEL_OPTIONS)} "
                "(e.g. NAME=SOURCE@dtype=bfloat16,device_map=auto)"
            )
        if key in options:
            raise ValueError(f"{text!r} gives model option {key!r} twice")
        value = value.strip()
        if key == "trust_remote_code":
            if value.lower() not in _TRUE + _FALSE:
                raise ValueError(f"{text!r} has trust_remote_code={value!r}; write trust_remote_code or =false")
            options[key] = value.lower() in _TRUE
        elif not value:
            raise ValueError(f"{text!r} has no value for model option {key!r}; write {key}=VALUE")
        else:
            options[key] = value
        last = key
    if not source.strip():
        raise ValueError(f"{text!r} has no source before '@'; write SOURCE@{tail} (SOURCE may be 'default')")
    return source, options


def parse_model_text(text: str) -> tuple[str | None, str, dict]:
    """A ``--model`` value -> ``(NAME or None, SOURCE, {option: value})``; see :func:`split_named_source` and
    :func:`split_model_options`. Raises ``ValueError`` naming the bad part.

    Example:
        >>> parse_model_text("bf16=default@dtype=bfloat16")
        ('bf16', 'default', {'dtype': 'bfloat16'})
    """
    source, options = split_model_options(text)
    name, source = split_named_source(source)
    return name, source, options


def shared_options(specs) -> dict:
    """The model options on which all of ``specs`` agree, ``{option: value}`` (None/False ones included): the
    command line gives them once, as ``--dtype`` etc.; each ``--model`` carries the others after ``@``."""
    specs = list(specs)
    return {
        key: getattr(specs[0], key)
        for key in MODEL_OPTIONS
        if specs and all(getattr(s, key) == getattr(specs[0], key) for s in specs)
    }


@dataclass(frozen=True)
class ModelSpec:
    """Which model to load, and how.

    Attributes:
        source: ``None`` for the embedded default model (Gemma 3 270M); a ``.gguf`` file; a local Hugging
            Face, MLX-quantized or sentence-transformers directory; or a hub id.
        name: the display name in tables and legends (None: the loaded model's own name).
        dtype: ``float32`` (exact on CPU; None means that), ``bfloat16``, ``float16`` or ``auto``.
        device_map: handed to accelerate (``"auto"`` spreads a model over the devices there are, then the CPU,
            then disk; ``"sequential"``, ``"balanced"``, ``"cpu"``, ``"cuda:0"``, ...).
        trust_remote_code: let the model repository run its own Python code.
        max_memory: the most each device may hold of the weights, ``"cpu=2GiB"`` or ``"0=20GiB,cpu=30GiB"`` (a
            dict such as ``{"cpu": "2GiB"}`` is kept as that text); what does not fit goes to disk. Implies
            ``device_map="auto"`` when none is given.
        offload_dir: where accelerate writes weights offloaded to disk that it cannot read from the model's own
            safetensors files (None: a temporary folder, removed when the process ends). Implies
            ``device_map="auto"`` when none is given.
    """

    source: str | None = None
    name: str | None = None
    dtype: DType | None = None
    device_map: str | None = None
    trust_remote_code: bool = False
    max_memory: str | None = None
    offload_dir: str | None = None

    def __post_init__(self) -> None:
        if self.source is not None:
            text = os.fspath(self.source)
            object.__setattr__(self, "source", None if text == "default" else text)
        if isinstance(self.max_memory, dict):
            object.__setattr__(self, "max_memory", max_memory_text(self.max_memory))
        if self.offload_dir is not None:
            object.__setattr__(self, "offload_dir", os.fspath(self.offload_dir))

    @classmethod
    def of(cls, value: ModelSpec | Model | str | os.PathLike | None, **options) -> ModelSpec:
        """A spec from what a Python user passes as ``model=``: a spec, a loaded model, a source or None. A
        text ``"NAME=SOURCE"`` names the model as ``--model NAME=SOURCE`` does (unless it is an existing path)."""
        if isinstance(value, ModelSpec):
            return value
        if value is None or isinstance(value, os.PathLike):
            return cls(source=None if value is None else os.fspath(value), **options)
        if isinstance(value, str):
            try:
                name, source, own = parse_model_text(value)
            except ValueError as exc:
                raise LayerscopeError(str(exc)) from None
            if name is not None and "name" not in options:
                options["name"] = name
            return cls(source=source, **{**own, **options})
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
        if self.max_memory is not None:
            try:
                parse_max_memory(self.max_memory)
            except ValueError as exc:
                raise LayerscopeError(f"max_memory {self.max_memory!r} {exc}") from None
        if self.offload_dir is not None and not str(self.offload_dir).strip():
            raise LayerscopeError("offload_dir '' is empty; give a folder for weights offloaded to disk")
        if self.name is not None and not is_plain_name(self.name):
            raise LayerscopeError(
                f"model name {self.name!r} is not a plain name: give one without '=', '/' or '\\', control "
                "characters, surrounding spaces, or a leading '.', '~' or '-'"
            )

    @property
    def label(self) -> str:
        """What the user asked for: the source, or ``default``."""
        return self.source or "default"

    @property
    def value(self) -> str:
        """The ``--model`` value that gives this model and its name: ``NAME=SOURCE``, or the source alone."""
        return f"{self.name}={self.label}" if self.name else self.label

    def value_beside(self, shared: dict) -> str:
        """The ``--model`` value that gives this model, its name and its options other than ``shared`` (those
        the command line gives once for all): ``NAME=SOURCE@dtype=bfloat16,...``, or :attr:`value`."""
        own = []
        for key in MODEL_OPTIONS:
            value = getattr(self, key)
            if key in shared or value is None or value is False:
                continue
            own.append(key if value is True else f"{key}={value}")
        return self.value + ("@" + ",".join(own) if own else "")

    def check_source(self) -> None:
        """Refuse a local source that does not exist or cannot be read (a hub id is left to loading): one line,
        before any model loads."""
        if self.source is None:
            return
        path = os.path.expanduser(self.source)
        if not os.path.exists(path):
            hub_id = re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", self.source) and not path.endswith(".gguf")
            if not hub_id:
                raise LayerscopeError(f"no such model file or directory: {self.source!r}")
            return
        if not os.access(path, os.R_OK) or (os.path.isdir(path) and not os.access(path, os.X_OK)):
            raise LayerscopeError(f"model {self.source!r} cannot be read (permission denied)")
        if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "config.json")):
            raise LayerscopeError(f"{self.source!r} is not a model directory: it has no config.json")

    def argv(self, flag: str = "--model") -> list[str]:
        """The command-line options that give this spec (``[]`` for the default model, default options)."""
        args = [] if self.source is None and self.name is None else [flag, self.value]
        return args + self.option_argv()

    def option_argv(self) -> list[str]:
        """The options after ``--model``: ``--dtype``, ``--device-map``, ``--trust-remote-code``,
        ``--max-memory``, ``--offload-dir``."""
        args: list[str] = []
        if self.dtype is not None:
            args += ["--dtype", self.dtype]
        if self.device_map is not None:
            args += ["--device-map", self.device_map]
        if self.trust_remote_code:
            args.append("--trust-remote-code")
        if self.max_memory is not None:
            args += ["--max-memory", self.max_memory]
        if self.offload_dir is not None:
            args += ["--offload-dir", self.offload_dir]
        return args


def specs_argv(specs, flag: str = "--model", shared: dict | None = None) -> list[str]:
    """Options for several models: ``--model`` each (``default`` for the default model), then the options all
    share once (``--dtype``, ``--device-map``, ...); an option on which they differ travels with each model
    (``--model bf16=default@dtype=bfloat16``), so every model reruns as itself.

    ``shared``: the options given once (default: :func:`shared_options` of ``specs``).
    """
    specs = list(specs)
    if not specs:
        return []
    shared = shared_options(specs) if shared is None else shared
    if len(specs) == 1 and all(key in shared for key in MODEL_OPTIONS):
        return specs[0].argv(flag)
    args = [arg for spec in specs for arg in (flag, spec.value_beside(shared))]
    return args + ModelSpec(**shared).option_argv()


def unique_name(name: str, taken: set[str] | list[str] | dict) -> str:
    """``name``, or ``name (2)``, ``name (3)``, ... when it is taken: the one format for duplicate names."""
    candidate, k = name, 2
    while candidate in taken:
        candidate, k = f"{name} ({k})", k + 1
    return candidate


def model_list(models=None, model=None) -> list:
    """The models a Python face was given as one list: ``models=`` and ``model=`` are one parameter (one model or
    a list of them), under either spelling; giving both is refused. Nothing given: ``[None]`` (the default model).

    Example:
        >>> model_list(model=["a", "b"]), model_list("a"), model_list()
        (['a', 'b'], ['a'], [None])
    """
    if models is not None and model is not None:
        raise LayerscopeError("both models= and model= are given; they are one parameter: give one model or a list")
    value = model if models is None else models
    return list(value) if isinstance(value, (list, tuple)) else [value]
