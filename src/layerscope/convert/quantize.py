"""``quantize``: make the formats to compare, offline (MLX affine through mlx, GGUF types through gguf).

A quantize run is a run directory like every experiment's, claimed before anything is read (locked for the run,
refused when it holds anything else unless ``force``, no link followed; see :meth:`layerscope.rundir.RunDir.claim`):

- ``to="mlx"``: the directory is the model in mlx-lm's layout (``config.json``, ``model.safetensors``, tokenizer
  files) plus ``run.json``, so ``load_model(out)``, mlx-lm and :func:`layerscope.load_run` all open it;
- ``to="gguf"``: the directory holds ``model.gguf`` and ``run.json``.

The model is written to a hidden temporary directory inside the run directory and renamed into place when
complete; ``run.json`` comes last and marks a finished run. A killed run leaves an unfinished mark that the next
run into the same ``out`` clears; a finished one is replaced only with ``force``.

With a recipe (``recipe="recipe.json"``, see :mod:`layerscope.convert.recipe`) the file is mixed: the recipe's
base bits, group size and type, and its modules at their own bits (MLX: per-module entries of mlx-lm's
``quantization`` block) or types (GGUF: per tensor). ``run.json`` records the recipe itself.

Example:
    >>> layerscope.quantize(to="mlx", bits=4, group_size=64, out="runs/gemma-mlx-4bit")
    PosixPath('runs/gemma-mlx-4bit')
    >>> layerscope.quantize(to="gguf", type="Q8_0", out="runs/gemma-q8_0")
    PosixPath('runs/gemma-q8_0/model.gguf')
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LayerscopeError, choices_text
from ..experiment import ConfigError, ExperimentConfig, Result, option
from ..rundir import UNFINISHED, RunDir
from ..runner import Caller, execute
from .gguf_write import check_gguf_type
from .mlx_write import check_mlx_options
from .recipe import Recipe

FORMATS = ("mlx", "gguf")
#: the name of the GGUF file inside a ``to="gguf"`` run directory
GGUF_NAME = "model.gguf"


@dataclass(frozen=True, kw_only=True)
class QuantizeConfig(ExperimentConfig):
    """What ``layerscope quantize`` writes.

    Attributes:
        source: None (or ``"default"``) for the default model (its Q4_K_M GGUF, dequantized), a ``.gguf`` file,
            a Hugging Face directory (safetensors), an MLX directory (dequantized first) or a cached hub id.
            ``to="gguf"`` needs a GGUF source (a ``.gguf`` file or the default model).
        to: ``"mlx"``: a directory in mlx-lm's layout, quantized by ``mlx.core.quantize``; ``"gguf"``: a
            ``.gguf`` file whose matrices are re-quantized by ``gguf.quants.quantize``.
        bits, group_size: MLX affine quantization: 2, 3, 4, 5, 6 or 8 bits; groups of 32, 64 or 128 inputs.
        type: the GGML type for ``to="gguf"`` (Q8_0, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, ...).
        recipe: a recipe file (``recipe.json``, written by ``layerscope sensitivity``): its base gives ``bits``,
            ``group_size`` (MLX) and ``type`` (GGUF), which are then left at their defaults or set to the
            recipe's, and its overrides quantize some modules otherwise.
        dtype: MLX: the dtype weights are cast to before quantizing (and of scales, biases and unquantized
            tensors): ``float16``, ``bfloat16`` or ``float32``; default the config's dtype, as mlx-lm takes it.
        resume_dir: the run directory the model is written into (set by the runner from ``out``).
    """

    experiment = "quantize"
    loads_own_models = True  # reads the checkpoint's tensors one at a time; no model is loaded

    source: str | None = option(
        None,
        positional=True,
        metavar="SOURCE",
        help="a .gguf file, a Hugging Face or MLX directory, a cached hub id, or 'default' (the default model)",
    )
    to: str = option("mlx", metavar="FORMAT", help="mlx or gguf (default mlx)")
    bits: int = option(4, metavar="N", help="MLX bits per weight: 2, 3, 4, 5, 6 or 8 (default 4)")
    group_size: int = option(64, metavar="N", help="MLX inputs per scale and bias: 32, 64 or 128 (default 64)")
    type: str = option("Q8_0", metavar="TYPE", help="GGUF type, e.g. Q8_0, F16, BF16 (default Q8_0)")
    dtype: str | None = option(
        None,
        metavar="DTYPE",
        help="MLX: cast weights to float16, bfloat16 or float32 before quantizing (default: the config's dtype)",
    )
    recipe: str | None = option(
        None,
        metavar="FILE",
        help="a recipe.json (from layerscope sensitivity): its base bits, group size and type, and per-module "
        "bits (MLX) or types (GGUF) over them",
    )
    resume_dir: str | None = option(None, flag="")

    def validate(self) -> None:
        super().validate()
        if self.to not in FORMATS:
            raise self.error("to", self.to, f"is not a format quantize writes; valid: {choices_text(FORMATS)}")
        if self.to == "mlx":
            check_mlx_options(self.bits, self.group_size, self.dtype)
        else:
            check_gguf_type(self.type)
        self.read_recipe()

    def read_recipe(self) -> Recipe | None:
        """The recipe of ``recipe`` (None without one), refusing a ``bits``, ``group_size`` or ``type`` that was
        set to something other than the recipe's base."""
        if self.recipe is None:
            return None
        from .recipe import read_recipe

        if not isinstance(self.recipe, str) or not self.recipe.strip():
            raise self.error("recipe", self.recipe, "is not a path; give a recipe file (recipe.json)")
        recipe = read_recipe(self.recipe)
        used = ("bits", "group_size") if self.to == "mlx" else ("type",)
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name in used:
            value, base = getattr(self, name), getattr(recipe, name)
            if value != defaults[name] and value != base:
                raise self.error(
                    name,
                    value,
                    f"disagrees with the recipe's base ({base!r}); leave it out with a recipe, or edit "
                    "the recipe's base",
                )
        return recipe

    def quant_label(self, recipe: Recipe | None = None) -> str:
        """``MLX 4-bit g64`` or ``GGUF Q8_0``: the base written (the recipe's with one), and its overrides."""
        if recipe is None:
            return _label(self.to, self.bits, self.group_size, self.type, 0)
        return _label(self.to, recipe.bits, recipe.group_size, recipe.type, len(recipe.overrides))

    def run(self, model=None) -> QuantizeResult:
        if self.resume_dir is None:
            raise ConfigError("out", None, "is needed: quantize writes its model into a run directory")
        return run_quantize(self)


def _label(to: str, bits, group_size, type_name, n_overrides: int) -> str:
    label = f"MLX {bits}-bit g{group_size}" if to == "mlx" else f"GGUF {type_name}"
    if n_overrides:
        label += f" with {n_overrides} module{'s' if n_overrides != 1 else ''} from the recipe"
    return label


@dataclass(kw_only=True, repr=False)
class QuantizeResult(Result):
    """A quantized copy written.

    Attributes:
        path: the model: the run directory (MLX) or the ``.gguf`` file inside it.
        written: what was written: ``dtype`` (MLX) or ``type`` (GGUF), counts of ``quantized`` and kept
            tensors (``unquantized`` / ``kept``, GGUF's ``fallback_f16``), ``files`` and ``bytes``.
    """

    config: QuantizeConfig
    path: Path
    written: dict = field(default_factory=dict)
    recipe: dict | None = None

    main_file = "run.json"

    def record(self) -> dict:
        model = "." if self.config.to == "mlx" else GGUF_NAME
        record = {"model_path": model, "written": self.written}
        if self.recipe is not None:
            record["recipe"] = self.recipe
        return record

    def summary(self) -> list[str]:
        w, config = self.written, self.config
        label = config.quant_label()
        if self.recipe is not None:  # the recipe as run.json records it: its base and how many overrides
            base = self.recipe.get("base") if isinstance(self.recipe.get("base"), dict) else {}
            overrides = self.recipe.get("overrides") if isinstance(self.recipe.get("overrides"), list) else []
            label = _label(config.to, base.get("bits"), base.get("group_size"), base.get("type"), len(overrides))
        if config.to == "mlx":
            what = f"{label}, {w.get('dtype')} scales: "
            what += f"{w.get('quantized')} matrices quantized, {w.get('unquantized')} tensors kept"
        else:
            what = f"{label}: {w.get('quantized')} matrices quantized, {w.get('kept')} tensors kept"
            if w.get("fallback_f16"):
                what += f", {w['fallback_f16']} stored as F16 (rows not a multiple of the block)"
        return [f"{what}; {w.get('bytes', 0) / 1e6:,.1f} MB"]

    @classmethod
    def from_files(cls, config, tables, arrays, record, run_dir) -> QuantizeResult:
        """A saved quantize run (see :func:`layerscope.load_run`): the model's path and what was written."""
        model = record.get("model_path")
        if model not in (".", GGUF_NAME):
            raise LayerscopeError(f"{str(run_dir / 'run.json')!r} names no model written by quantize")
        written, recipe = record.get("written"), record.get("recipe")
        return cls(
            config=config,
            path=Path(run_dir) if model == "." else Path(run_dir) / model,
            written=written if isinstance(written, dict) else {},
            recipe=recipe if isinstance(recipe, dict) else None,
            **cls.saved(record),
        )


def run_quantize(config: QuantizeConfig) -> QuantizeResult:
    """Write the quantized model into ``config.resume_dir`` (a run directory claimed by the runner)."""
    from .gguf_write import write_gguf

    run_dir = RunDir(config.resume_dir)
    if run_dir.existing_experiment() is not None:  # --force has emptied it: a finished run stays
        raise ConfigError("out", config.resume_dir, "exists; choose a new path or replace it (force=True, --force)")
    recipe = config.read_recipe()
    label = config.quant_label(recipe)
    start = time.perf_counter()
    if config.to == "gguf":
        source = gguf_source(config.source)
        _clear(run_dir)
        type_name = recipe.type if recipe else config.type
        with run_dir.staging() as tmp:
            written = write_gguf(source, tmp / GGUF_NAME, type_name, f"Quantizing {source.name} to {label}", recipe)
        path = run_dir.path / GGUF_NAME
        display = source.name
    else:
        from .float_weights import open_float_weights
        from .mlx_write import require_mlx, write_mlx

        require_mlx()
        with open_float_weights(config.source) as weights:
            display = "the default model" if weights.source == "default" else weights.source
            _clear(run_dir)
            bits, group_size = (recipe.bits, recipe.group_size) if recipe else (config.bits, config.group_size)
            with run_dir.staging() as tmp:
                written = write_mlx(
                    weights, tmp, bits, group_size, config.dtype, f"Quantizing {display} to {label}", recipe
                )
        path = run_dir.path
    source_name = config.source or "default"
    return QuantizeResult(
        config=config,
        path=path,
        written=written,
        recipe=recipe.to_json(written.get("gguf_arch"), written.get("n_blocks")) if recipe else None,
        models=[{"source": source_name, "name": source_name, "display_name": display}],
        timings={"quantize": time.perf_counter() - start},
    )


def _clear(run_dir: RunDir) -> None:
    """Empty the run directory of what an interrupted run left (the claim allows nothing else in it), keeping
    its unfinished mark."""
    run_dir.empty()
    from ..atomic import write_json

    write_json(run_dir.path / UNFINISHED, {"experiment": QuantizeConfig.experiment})


def gguf_source(source) -> Path:
    """The GGUF file ``to="gguf"`` re-quantizes: ``source`` (a ``.gguf`` file) or the default model's."""
    from ..models.gguf_cache import check_gguf

    if source is None or str(source) == "default":
        from ..checkpoints.default import default_model_path

        return default_model_path()
    path = Path(os.fspath(source)).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        check_gguf(path)
        return path
    if not path.exists():
        raise LayerscopeError(f"no such GGUF file: {os.fspath(source)!r}")
    raise LayerscopeError(
        f"GGUF output re-quantizes a GGUF file, and {os.fspath(source)!r} is not one; give a .gguf file or the "
        "default model (llama.cpp's convert_hf_to_gguf.py turns a Hugging Face directory into GGUF)"
    )


def check_out(out, to: str) -> Path:
    """``out`` as a path, refusing one that names nothing or a ``.gguf`` file (the run directory holds it)."""
    if out is None or not str(out).strip():
        raise ConfigError("out", out, "is not a path; give the run directory to write the model into")
    path = Path(out)
    if path.suffix.lower() == ".gguf":
        raise ConfigError(
            "out",
            str(out),
            f"names a .gguf file; give the run directory to write (the GGUF file goes inside it, as {GGUF_NAME})",
        )
    return path


def quantize_run(config: QuantizeConfig, out, *, force: bool = False, via: Caller = "python") -> QuantizeResult:
    """Validate ``config``, claim the run directory ``out`` and write the model and ``run.json`` into it."""
    from ..runner import named_for

    with named_for(via):
        config.validate()  # a bad option is named before a bad out
        path = check_out(out, config.to)
    return execute(config, out=path, force=force, via=via)


def quantize(
    source=None,
    *,
    to: str = "mlx",
    bits: int = 4,
    group_size: int = 64,
    type: str = "Q8_0",
    out,
    dtype: str | None = None,
    recipe=None,
    force: bool = False,
) -> Path:
    """Write a quantized copy of ``source`` into the run directory ``out``; returns the model's path (``out``
    for MLX, ``out/model.gguf`` for GGUF). The arguments are :class:`QuantizeConfig`'s (``recipe``: a recipe
    file's path); ``force`` replaces what ``out`` holds (a link named as ``out`` is replaced, never followed).

    Example:
        >>> layerscope.quantize(recipe="runs/sensitivity-1/recipe.json", out="runs/gemma-mixed")
        PosixPath('runs/gemma-mixed')
    """
    source = None if source is None else os.fspath(source)
    recipe = None if recipe is None else os.fspath(recipe)
    config = QuantizeConfig(
        source=source, to=to, bits=bits, group_size=group_size, type=type, dtype=dtype, recipe=recipe
    )
    return quantize_run(config, out, force=force).path
