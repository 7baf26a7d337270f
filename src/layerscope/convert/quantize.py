"""``quantize``: make the formats to compare, offline (MLX affine through mlx, GGUF types through gguf).

The output appears whole or not at all: it is written beside ``out`` under a temporary name
(``.NAME.xxxx.part``) and renamed onto ``out`` when complete; an interrupted run leaves no ``out``.

Example:
    >>> layerscope.quantize(to="mlx", bits=4, group_size=64, out="runs/gemma-mlx-4bit")
    PosixPath('runs/gemma-mlx-4bit')
    >>> layerscope.quantize(to="gguf", type="Q8_0", out="runs/gemma-q8_0.gguf")
    PosixPath('runs/gemma-q8_0.gguf')
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import LayerscopeError, choices_text

FORMATS = ("mlx", "gguf")


def check_quantize_options(
    to: str, bits: int, group_size: int, type: str, out, force: bool, dtype: str | None = None
) -> Path:
    """Refuse bad options before anything is read (one line naming the value and what is valid);
    returns ``out`` as a Path."""
    from ..experiment import ConfigError
    from .gguf_write import check_gguf_type
    from .mlx_write import check_mlx_options

    if to not in FORMATS:
        raise ConfigError("to", to, f"is not a format quantize writes; valid: {choices_text(FORMATS)}")
    if to == "mlx":
        check_mlx_options(bits, group_size, dtype)
    else:
        check_gguf_type(type)
    if out is None or not str(out).strip():
        raise ConfigError("out", out, "is not a path; give the directory (MLX) or .gguf file to write")
    path = Path(out).expanduser()
    if to == "gguf" and path.suffix.lower() != ".gguf":
        raise ConfigError("out", str(out), "must name a .gguf file for GGUF output")
    if path.is_symlink():
        raise ConfigError("out", str(out), "is a symbolic link; name a new path")
    if path.exists() and not force and not _empty_dir(path):
        raise ConfigError("out", str(out), "exists; choose a new path or replace it (force=True, --force)")
    if path.exists() and to == "mlx" and not path.is_dir():
        raise ConfigError("out", str(out), "is a file; MLX output is a directory")
    if path.exists() and to == "gguf" and path.is_dir():
        raise ConfigError("out", str(out), "is a directory; GGUF output is one file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise LayerscopeError(f"out {str(out)!r}: {str(parent)!r} is a file, not a directory")
            break
    return path


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def quantize(
    source=None,
    *,
    to: str = "mlx",
    bits: int = 4,
    group_size: int = 64,
    type: str = "Q8_0",
    out,
    dtype: str | None = None,
    force: bool = False,
) -> Path:
    """Write a quantized copy of ``source``; returns the path written.

    Args:
        source: None (or ``"default"``) for the default model (its Q4_K_M GGUF, dequantized), a ``.gguf`` file,
            a Hugging Face directory (safetensors), an MLX directory (dequantized first) or a cached hub id.
            ``to="gguf"`` needs a GGUF source (a ``.gguf`` file or the default model).
        to: ``"mlx"``: a directory in mlx-lm's layout, quantized by ``mlx.core.quantize``; ``"gguf"``: a
            ``.gguf`` file whose matrices are re-quantized by ``gguf.quants.quantize``.
        bits, group_size: MLX affine quantization: 2, 3, 4, 5, 6 or 8 bits; groups of 32, 64 or 128 inputs.
        type: the GGML type for ``to="gguf"``, one of those the gguf package quantizes to (Q8_0, F16, BF16,
            Q4_0, Q4_1, Q5_0, Q5_1, ...).
        out: the directory (MLX) or ``.gguf`` file to write; it must not exist unless ``force``.
        dtype: MLX: the dtype weights are cast to before quantizing (and of scales, biases and unquantized
            tensors): ``float16``, ``bfloat16`` or ``float32``; default the config's dtype, as mlx-lm takes it.
        force: replace an existing ``out``.
    """
    return quantize_summary(
        source, to=to, bits=bits, group_size=group_size, type=type, out=out, dtype=dtype, force=force
    )[0]


def quantize_summary(source, *, to, bits, group_size, type, out, dtype=None, force=False) -> tuple[Path, dict]:
    """:func:`quantize`, also returning what was written (counts of quantized and kept tensors, bytes, dtype)."""
    path = check_quantize_options(to, bits, group_size, type, out, force, dtype)
    label = f"MLX {bits}-bit g{group_size}" if to == "mlx" else f"GGUF {type}"
    if to == "gguf":
        gguf_source = _gguf_source(source)
        with _atomic_output(path, is_dir=False) as tmp:
            summary = write_gguf_file(gguf_source, tmp, type, f"Quantizing {gguf_source.name} to {label}")
    else:
        from .float_weights import open_float_weights
        from .mlx_write import require_mlx, write_mlx

        require_mlx()

        with open_float_weights(source) as weights:
            name = "the default model" if weights.source == "default" else weights.source
            with _atomic_output(path, is_dir=True) as tmp:
                summary = write_mlx(weights, tmp, bits, group_size, dtype, f"Quantizing {name} to {label}")
    return path, summary


def write_gguf_file(source: Path, out: Path, type_name: str, description: str = "Quantizing") -> dict:
    from .gguf_write import write_gguf

    return write_gguf(source, out, type_name, description)


def _gguf_source(source) -> Path:
    from ..models.gguf_cache import check_gguf

    if source is None or str(source) == "default":
        from ..models.default import default_model_path

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


class _atomic_output:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` (the old one removed), on error
    it is removed."""

    def __init__(self, path: Path, is_dir: bool):
        self.path, self.is_dir, self.tmp = path, is_dir, None

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        where = str(self.path.parent)
        if self.is_dir:
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".part", dir=where))
        else:
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=where)
            os.close(fd)
            self.tmp = Path(name)
        return self.tmp

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                mask = os.umask(0)
                os.umask(mask)
                os.chmod(self.tmp, (0o777 if self.is_dir else 0o666) & ~mask)
                self._replace()
        finally:
            _remove(self.tmp)

    def _replace(self) -> None:
        if not self.path.exists():
            os.rename(self.tmp, self.path)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".old", dir=str(self.path.parent)))
        try:
            os.rename(self.path, old / "replaced")
            os.rename(self.tmp, self.path)
        finally:
            _remove(old)


def _remove(path: Path | None) -> None:
    if path is None or not (path.exists() or path.is_symlink()):
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink()
