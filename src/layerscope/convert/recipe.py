"""A mixed-precision recipe: a base quantization and per-module overrides, for MLX and GGUF alike.

A recipe says how to quantize each weight matrix of a model: the base (MLX ``bits`` and ``group_size``, the GGUF
``type``) and, for some modules named by their Hugging Face path (``model.layers.12.mlp.down_proj``), other bits
and another type. ``layerscope sensitivity`` writes one (``recipe.json`` in its run directory) and
``layerscope quantize --recipe recipe.json`` writes the mixed file. The file::

    {"layerscope_recipe": 1,
     "base": {"bits": 4, "group_size": 64, "type": "Q4_0"},
     "overrides": [{"module": "model.layers.12.mlp.down_proj", "bits": 8, "type": "Q8_0"}],
     "notes": {...},                                           # informative, never read back for writing
     "mlx_quantization": {"group_size": 64, "bits": 4, "mode": "affine",
                          "model.layers.12.mlp.down_proj": {"group_size": 64, "bits": 8}},
     "llama_cpp_tensor_type": ["blk.12.ffn_down=q8_0"]}

``base`` and ``overrides`` are the recipe; ``mlx_quantization`` (mlx-lm's ``config.json`` block) and
``llama_cpp_tensor_type`` (``llama-quantize --tensor-type`` arguments) are views written for reading: when a
file's ``mlx_quantization`` disagrees with its overrides it is refused, and ``llama_cpp_tensor_type`` is not
read back.

Example:
    >>> recipe = Recipe(bits=4, group_size=64, type="Q4_0",
    ...                 overrides=(TensorOverride("model.layers.12.mlp.down_proj", 8, "Q8_0"),))
    >>> recipe.llama_cpp_tensor_types("gemma3", 26)
    ['blk.12.ffn_down=q8_0']
    >>> write_recipe(recipe, "recipe.json")
    PosixPath('recipe.json')
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..checkpoints.mlx_quant import VALID_BITS, VALID_GROUP_SIZES
from ..errors import LayerscopeError, choices_text

#: the version of the recipe file format (the value of its ``layerscope_recipe`` key)
RECIPE_VERSION = 1
#: the name of the recipe file in a run directory
RECIPE_NAME = "recipe.json"
#: the most bytes a recipe file may hold (a 400-block model with every matrix overridden needs ~0.5 MB)
MAX_RECIPE_BYTES = 4 << 20
_MODULE = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")
_KEYS = ("layerscope_recipe", "base", "overrides", "notes", "mlx_quantization", "llama_cpp_tensor_type")
_BASE_KEYS = ("bits", "group_size", "type")
_OVERRIDE_KEYS = ("module", "bits", "type")


def _check_bits(bits, where: str) -> None:
    if not isinstance(bits, int) or isinstance(bits, bool) or bits not in VALID_BITS:
        raise LayerscopeError(f"{where}: bits {bits!r} is not supported by MLX; valid: {choices_text(VALID_BITS)}")


def _check_type(type_name, where: str) -> None:
    from .gguf_write import gguf_types

    if not isinstance(type_name, str) or type_name not in gguf_types():
        raise LayerscopeError(
            f"{where}: type {type_name!r} is not a type the gguf package quantizes to; "
            f"valid: {choices_text(gguf_types())}"
        )


@dataclass(frozen=True)
class TensorOverride:
    """One module quantized apart from the base.

    Attributes:
        module: the Hugging Face module path of a linear layer or embedding (its ``.weight`` is the matrix),
            e.g. ``"model.layers.12.mlp.down_proj"``.
        bits: the MLX bits for this module (2, 3, 4, 5, 6 or 8; the group size is the recipe's).
        type: the GGML type for this tensor in a GGUF file, e.g. ``"Q8_0"``.
    """

    module: str
    bits: int
    type: str

    def __post_init__(self) -> None:
        if not isinstance(self.module, str) or not _MODULE.fullmatch(self.module):
            raise LayerscopeError(
                f"recipe override module {self.module!r} is not a module path; give a dotted Hugging Face path "
                "such as 'model.layers.12.mlp.down_proj'"
            )
        if self.module.endswith((".weight", ".scales", ".biases", ".bias")):
            stem = self.module.rsplit(".", 1)[0]
            raise LayerscopeError(
                f"recipe override module {self.module!r} names a tensor; name its module instead ({stem!r})"
            )
        where = f"recipe override {self.module!r}"
        _check_bits(self.bits, where)
        _check_type(self.type, where)

    def to_json(self) -> dict:
        return {"module": self.module, "bits": self.bits, "type": self.type}


@dataclass(frozen=True)
class Recipe:
    """A base quantization and the modules quantized otherwise.

    Attributes:
        bits, group_size: the MLX affine base: bits per weight (2-8) and inputs per scale (32, 64, 128).
        type: the GGUF base type of the weight matrices, e.g. ``"Q4_0"``.
        overrides: the modules quantized apart from the base, at most one per module.
        notes: free-form and informative (KL removed, bytes, the run that chose the overrides); written to the
            file, never used for writing a model.
    """

    bits: int
    group_size: int
    type: str
    overrides: tuple[TensorOverride, ...] = ()
    notes: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        _check_bits(self.bits, "recipe base")
        if (
            not isinstance(self.group_size, int)
            or isinstance(self.group_size, bool)
            or (self.group_size not in VALID_GROUP_SIZES)
        ):
            raise LayerscopeError(
                f"recipe base: group_size {self.group_size!r} is not supported by MLX; "
                f"valid: {choices_text(VALID_GROUP_SIZES)}"
            )
        _check_type(self.type, "recipe base")
        overrides = tuple(self.overrides)
        object.__setattr__(self, "overrides", overrides)
        seen = set()
        for item in overrides:
            if not isinstance(item, TensorOverride):
                raise LayerscopeError(f"recipe override {item!r} is not a TensorOverride")
            if item.module in seen:
                raise LayerscopeError(f"recipe overrides module {item.module!r} twice; keep one entry per module")
            seen.add(item.module)
        if not isinstance(self.notes, dict):
            raise LayerscopeError(f"recipe notes {self.notes!r} are not a mapping")

    # ----- lookups -----------------------------------------------------------------------------------
    @property
    def modules(self) -> tuple[str, ...]:
        """The overridden modules, in the recipe's order."""
        return tuple(item.module for item in self.overrides)

    def bits_of(self, module: str) -> int:
        """The MLX bits of ``module`` (its override's, else the base's)."""
        return next((item.bits for item in self.overrides if item.module == module), self.bits)

    def type_of(self, module: str) -> str:
        """The GGUF type of ``module``'s weight (its override's, else the base's)."""
        return next((item.type for item in self.overrides if item.module == module), self.type)

    # ----- views -------------------------------------------------------------------------------------
    def mlx_quantization(self) -> dict:
        """mlx-lm's ``config.json`` ``"quantization"`` block: the base, then one entry per overridden module.

        Example:
            >>> recipe.mlx_quantization()
            {'group_size': 64, 'bits': 4, 'mode': 'affine', 'model.layers.12.mlp.down_proj': {'group_size': 64, 'bits': 8}}
        """
        block: dict = {"group_size": self.group_size, "bits": self.bits, "mode": "affine"}
        for item in self.overrides:
            block[item.module] = {"group_size": self.group_size, "bits": item.bits}
        return block

    def llama_cpp_tensor_types(self, gguf_arch: str, n_blocks: int) -> list[str]:
        """The overrides as ``llama-quantize --tensor-type`` arguments: ``["blk.12.ffn_down=q8_0", ...]``, the
        modules mapped to GGUF tensor names by gguf's tensor name map of ``gguf_arch`` (a model of
        ``n_blocks`` blocks); a module the map does not know is refused."""
        return [f"{gguf_tensor_name(item.module, gguf_arch, n_blocks)}={item.type.lower()}" for item in self.overrides]

    def to_json(self, gguf_arch: str | None = None, n_blocks: int | None = None) -> dict:
        """The recipe file's content (see the module's docstring). ``llama_cpp_tensor_type`` maps the modules
        with ``gguf_arch`` (default: ``notes["gguf_arch"]``, else the first architecture gguf knows that names
        each module); ``n_blocks`` defaults to the highest block an override names, plus one."""
        arch = gguf_arch or self.notes.get("gguf_arch")
        blocks = n_blocks or 1 + max((_block_of(m) for m in self.modules), default=0)
        if arch:
            tensor_types = self.llama_cpp_tensor_types(arch, blocks)
        else:
            tensor_types = [f"{_any_arch_name(item.module, blocks)}={item.type.lower()}" for item in self.overrides]
        return {
            "layerscope_recipe": RECIPE_VERSION,
            "base": {"bits": self.bits, "group_size": self.group_size, "type": self.type},
            "overrides": [item.to_json() for item in self.overrides],
            "notes": self.notes,
            "mlx_quantization": self.mlx_quantization(),
            "llama_cpp_tensor_type": tensor_types,
        }

    @classmethod
    def from_json(cls, data, where: str = "recipe") -> Recipe:
        """The recipe a parsed recipe file holds; :class:`LayerscopeError` naming ``where`` and the bad value."""
        if not isinstance(data, dict):
            raise LayerscopeError(f"{where} is not a recipe: a JSON object with 'base' and 'overrides' is needed")
        _check_keys(data, _KEYS, where)
        version = data.get("layerscope_recipe")
        if version != RECIPE_VERSION or isinstance(version, bool):
            raise LayerscopeError(
                f"{where}: layerscope_recipe {version!r} is not a recipe version this layerscope reads; "
                f"valid: {RECIPE_VERSION}"
            )
        base = data.get("base")
        if not isinstance(base, dict):
            raise LayerscopeError(f"{where}: base {base!r} is not an object with {choices_text(_BASE_KEYS)}")
        _check_keys(base, _BASE_KEYS, f"{where}: base", required=True)
        entries = data.get("overrides", [])
        if not isinstance(entries, list):
            raise LayerscopeError(f"{where}: overrides {entries!r} is not a list of objects")
        overrides = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise LayerscopeError(f"{where}: overrides[{i}] {entry!r} is not an object")
            _check_keys(entry, _OVERRIDE_KEYS, f"{where}: overrides[{i}]", required=True)
            overrides.append(TensorOverride(entry["module"], entry["bits"], entry["type"]))
        notes = data.get("notes", {})
        if not isinstance(notes, dict):
            raise LayerscopeError(f"{where}: notes {notes!r} is not an object")
        recipe = cls(base["bits"], base["group_size"], base["type"], tuple(overrides), notes)
        view = data.get("mlx_quantization")
        if view is not None and view != recipe.mlx_quantization():
            raise LayerscopeError(
                f"{where}: mlx_quantization disagrees with base and overrides; edit base and overrides (the "
                "mlx_quantization view is written from them) or remove mlx_quantization"
            )
        return recipe


def _check_keys(data: dict, valid: tuple[str, ...], where: str, required: bool = False) -> None:
    unknown = [key for key in data if key not in valid]
    if unknown:
        raise LayerscopeError(f"{where}: key {unknown[0]!r} is not part of a recipe; valid: {choices_text(valid)}")
    missing = [key for key in valid if key not in data] if required else []
    if missing:
        raise LayerscopeError(f"{where}: {missing[0]!r} is missing; needed: {choices_text(valid)}")


def _block_of(module: str) -> int:
    """The block index a module path names (``model.layers.12.mlp.down_proj`` -> 12), else 0."""
    found = re.search(r"\.(\d+)\.", f".{module}.")
    return int(found.group(1)) if found else 0


# ----- GGUF tensor names -----------------------------------------------------------------------------------
@functools.cache
def _name_map(gguf_arch: str, n_blocks: int):
    import gguf

    by_name = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}
    if gguf_arch not in by_name:
        raise LayerscopeError(
            f"GGUF architecture {gguf_arch!r} is not one gguf knows; valid: {choices_text(sorted(by_name))}"
        )
    # gguf's TensorNameMap writes an architecture's own block names into the class-wide table it starts from, so
    # a map built for one architecture would change every later one (transformers' GGUF loading included): the
    # table is put back as it was.
    shared = gguf.TensorNameMap.block_mappings_cfg
    saved = dict(shared)
    try:
        return gguf.get_tensor_name_map(by_name[gguf_arch], n_blocks)
    finally:
        shared.clear()
        shared.update(saved)


def gguf_name_or_none(module: str, gguf_arch: str, n_blocks: int) -> str | None:
    """The GGUF tensor name (without ``.weight``) of the Hugging Face module ``module`` in a ``gguf_arch``
    model of ``n_blocks`` blocks, by gguf's tensor name map; None when the map does not know it."""
    name = _name_map(gguf_arch, n_blocks).get_name(f"{module}.weight", try_suffixes=(".weight",))
    return None if name is None else name.removesuffix(".weight")


def gguf_tensor_name(module: str, gguf_arch: str, n_blocks: int) -> str:
    """:func:`gguf_name_or_none`, refusing a module the map does not know (one line).

    Example:
        >>> gguf_tensor_name("model.layers.12.mlp.down_proj", "gemma3", 26)
        'blk.12.ffn_down'
    """
    name = gguf_name_or_none(module, gguf_arch, n_blocks)
    if name is None:
        raise LayerscopeError(
            f"recipe module {module!r} has no GGUF tensor name in gguf's map for architecture {gguf_arch!r} "
            f"({n_blocks} blocks); name a linear layer or the embedding of the model"
        )
    return name


def _any_arch_name(module: str, n_blocks: int) -> str:
    """The GGUF name of ``module`` by the first architecture gguf knows that names it (the linear layers'
    names agree across architectures); the module itself when none does."""
    import gguf

    for name in gguf.MODEL_ARCH_NAMES.values():
        found = gguf_name_or_none(module, name, n_blocks)
        if found is not None:
            return found
    return module


# ----- files -----------------------------------------------------------------------------------------------
def read_recipe(path: str | os.PathLike) -> Recipe:
    """The recipe in the file ``path``: read bounded (a regular file of at most :data:`MAX_RECIPE_BYTES`, not a
    symbolic link, UTF-8 JSON; see :mod:`layerscope.user_files`); a bad file is refused in one line."""
    from ..user_files import parse_json, read_user_text

    text = read_user_text(path, "recipe file", MAX_RECIPE_BYTES, follow_links=False)
    where = f"recipe file {os.fspath(path)!r}"
    return Recipe.from_json(parse_json(text, where), where)


def write_recipe(recipe: Recipe, path_or_rundir, gguf_arch: str | None = None, n_blocks: int | None = None) -> Path:
    """Write ``recipe`` whole or not at all: to ``recipe.json`` in a :class:`~layerscope.rundir.RunDir`, or to
    the file path given (a link there is replaced, never followed). ``gguf_arch`` and ``n_blocks`` are
    :meth:`Recipe.to_json`'s. Returns the path written."""
    from ..rundir import RunDir

    text = json.dumps(recipe.to_json(gguf_arch, n_blocks), indent=2) + "\n"
    if isinstance(path_or_rundir, RunDir):
        return path_or_rundir.text(RECIPE_NAME, text)
    from ..atomic import write_text

    return write_text(Path(os.fspath(path_or_rundir)).expanduser(), text)


def unknown_modules_error(missing: list[str], modules: list[str], where: str) -> LayerscopeError:
    """The one-line refusal of recipe modules that the model ``where`` does not have (``modules``: those it
    has), naming the nearest names it has."""
    import difflib

    near = difflib.get_close_matches(missing[0], modules, n=3)
    hint = (
        f"; nearest: {choices_text(near)}"
        if near
        else f"; its modules are named like {modules[0]!r}"
        if modules
        else ""
    )
    return LayerscopeError(
        f"the recipe names {len(missing)} module{'s' if len(missing) != 1 else ''} that {where} does not have: "
        f"{choices_text(missing, 5)}{hint}"
    )
