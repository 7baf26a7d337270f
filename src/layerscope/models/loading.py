"""``load_model``: one entry point for every model source layerscope reads; ``load_spec``: the same for a
:class:`~layerscope.model_spec.ModelSpec` (and its timed and given-or-loaded forms)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from .. import progress
from ..cache import cache_root
from ..checkpoints.default import DEFAULT_MODEL_NAME, default_model_path
from ..errors import LayerscopeError
from ..model_spec import ModelSpec, parse_max_memory
from . import guard
from .broken import first_line, refused
from .gguf_cache import cached_gguf_dir, gguf_general_name
from .kinds import CAUSAL_LM, kind_detail, missing_head_weights, model_kind
from .mlx import is_mlx_dir, load_mlx_model
from .model import Model
from .names import printable_name

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "auto": "auto"}


def load_model(
    source: str | os.PathLike | None = None,
    *,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    device_map: str | dict | None = None,
    trust_remote_code: bool = False,
    max_memory: dict | str | None = None,
    offload_dir: str | os.PathLike | None = None,
    name: str | None = None,
) -> Model:
    """Load a causal LM (or an encoder) from any source layerscope understands.

    The config's ``architectures`` decide the kind (see :mod:`.kinds`): a causal LM is loaded with its
    head (``model.head_is_trained`` is False when the head's weights were missing from the files); an
    encoder such as all-MiniLM-L6-v2 is loaded as the bare encoder (``model.kind == "encoder"``), for
    ``layers``, ``tokens``; experiments that read the LM head refuse both.

    Args:
        source: ``None`` (or ``"default"``) for the embedded Gemma 3 270M; a ``.gguf`` file; a local
            Hugging Face directory (an MLX-quantized one is dequantized); or a hub id such as ``"google/gemma-3-270m"``.
        dtype: ``"float32"`` (the default: exact numbers on CPU), ``"bfloat16"``, ``"float16"`` or ``"auto"``.
        device: move the model there after loading (``"cpu"``, ``"cuda"``, ``"mps"``).
        device_map: passed to accelerate (``"auto"`` spreads a model larger than one device over the GPUs,
            then the CPU, then disk; or a dict ``{module name: device}`` with ``"disk"`` for offloaded modules).
        trust_remote_code: run the model repository's own Python code; off unless asked for.
        max_memory: the most each device holds of the weights, accelerate's dict (``{0: "20GiB", "cpu":
            "30GiB"}``) or the text ``"0=20GiB,cpu=30GiB"``; the rest goes to disk. Implies ``device_map="auto"``.
        offload_dir: where accelerate writes weights offloaded to disk when it cannot read them from the
            model's own safetensors files (e.g. in another dtype); None: a temporary folder, removed when the
            process ends. Implies ``device_map="auto"``.
        name: the model's display name (in the "Loading ..." line and ``model.name``); None: its own.

    A GGUF file is dequantized once to ``dtype`` (float32 by default; bfloat16 and float16 copies are half the
    size, and a bfloat16 load writes no float32 copy) and cached as safetensors, which accelerate places
    tensor by tensor.

    Example:
        >>> model = load_model()            # Gemma 3 270M, offline
        >>> model.n_layers, model.d_model
        (18, 640)
    """
    torch_dtype = _parse_dtype(dtype)
    placement = _placement(device_map, max_memory, offload_dir)
    if source is None or str(source) == "default":
        path = default_model_path()
        directory, sha = cached_gguf_dir(path, _gguf_dtype(torch_dtype))
        dtype = _gguf_torch_dtype(torch_dtype)
        return _load_hf_dir(directory, "default", sha, name or DEFAULT_MODEL_NAME, dtype, device, placement, False)

    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            directory, sha = cached_gguf_dir(path, _gguf_dtype(torch_dtype))
            name = name or readable_name(gguf_general_name(path), path.stem) or "model"
            dtype = _gguf_torch_dtype(torch_dtype)
            return _load_hf_dir(directory, text, sha, name, dtype, device, placement, False)
        raise LayerscopeError(
            f"{text!r} is not a model: expected a .gguf file, a directory with config.json, or a hub id"
        )
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise LayerscopeError(f"{text!r} is not a model directory: it has no config.json")
        if is_mlx_dir(path):
            if placement is not None:
                raise LayerscopeError(
                    f"{text!r} is an MLX-quantized directory, which layerscope dequantizes in memory: --device-map, "
                    "--max-memory and --offload-dir are not supported for it (give --dtype bfloat16 to halve it)"
                )
            return load_mlx_model(path, text, directory_fingerprint(path), torch_dtype, device, trust_remote_code)
        return _load_hf_dir(
            path,
            text,
            directory_fingerprint(path),
            name or directory_name(path),
            torch_dtype,
            device,
            placement,
            trust_remote_code,
        )
    if text.endswith(".gguf") or text.startswith((".", "/", "~")) or os.sep in text.strip("/").replace("/", "", 1):
        raise LayerscopeError(f"no such model file or directory: {text!r}")
    if not _HUB_ID.match(text):
        raise LayerscopeError(
            f"{text!r} is neither an existing path nor a hub id (expected 'org/name', a .gguf file or a directory)"
        )
    return _load_hf_dir(
        text, text, f"hub:{text}", name or text.split("/")[-1], torch_dtype, device, placement, trust_remote_code
    )


def load_spec(spec: ModelSpec) -> Model:
    """Load the model ``spec`` names, with its options and display name (see :func:`load_model`).

    Example:
        >>> load_spec(ModelSpec("path/to/model.gguf", name="small", dtype="bfloat16")).name
        'small'
    """
    spec.validate()
    model = load_model(
        spec.source,
        dtype=spec.dtype,
        device_map=spec.device_map,
        trust_remote_code=spec.trust_remote_code,
        max_memory=parse_max_memory(spec.max_memory),
        offload_dir=spec.offload_dir,
        name=spec.name,
    )
    if spec.name:
        model.name = spec.name
    return model


def load_spec_timed(spec: ModelSpec, timings: dict[str, float]) -> Model:
    """:func:`load_spec`, adding the seconds it took to ``timings["load"]``."""
    start = time.perf_counter()
    model = load_spec(spec)
    timings["load"] = timings.get("load", 0.0) + time.perf_counter() - start
    return model


def given_or_loaded(spec: ModelSpec, model: Model | None, timings: dict[str, float]) -> Model:
    """``model`` when one is given, else ``spec`` loaded by :func:`load_spec_timed`."""
    return model if model is not None else load_spec_timed(spec, timings)


def models_given(specs: Sequence[ModelSpec], models) -> list[Model | None]:
    """One loaded model, or None (load it from its spec), per spec of ``specs``.

    ``models``: None (load every one), one loaded ``Model`` (the first spec's; the others are loaded), or a
    sequence with one ``Model`` or None per spec.
    """
    if models is None:
        return [None] * len(specs)
    if isinstance(models, Model):
        return [models] + [None] * (len(specs) - 1)
    given = list(models)
    if len(given) != len(specs):
        raise LayerscopeError(f"{len(given)} models given for {len(specs)} model specs; give one per spec")
    wrong = next((m for m in given if m is not None and not isinstance(m, Model)), None)
    if wrong is not None:
        raise LayerscopeError(f"{wrong!r} is not a loaded model; give layerscope.load_model(...) results or None")
    return given


def _gguf_dtype(dtype) -> str:
    """The dtype a GGUF file is dequantized to: ``auto`` (no float dtype of its own) means float32."""
    return "float32" if dtype == "auto" else str(dtype).removeprefix("torch.")


def _gguf_torch_dtype(dtype):
    return torch.float32 if dtype == "auto" else dtype


def _placement(device_map, max_memory, offload_dir) -> dict | None:
    """The ``from_pretrained`` placement options, or None for a model on one device: ``device_map``
    (``"auto"`` when only ``max_memory`` or ``offload_dir`` is given), ``max_memory`` as accelerate's dict, and
    ``offload_folder``."""
    if device_map is None and max_memory is None and offload_dir is None:
        return None

    if max_memory is not None:
        try:
            max_memory = parse_max_memory(max_memory)
        except ValueError as exc:
            raise LayerscopeError(f"max_memory {max_memory!r} {exc}") from None
    if offload_dir is None:
        offload_dir = _temporary_offload_dir()
    placement = {"device_map": "auto" if device_map is None else device_map, "offload_folder": os.fspath(offload_dir)}
    if max_memory is not None:
        placement["max_memory"] = max_memory
    return placement


def _temporary_offload_dir() -> str:
    """A folder for offloaded weights that is removed when the process ends."""
    import atexit
    import shutil
    import tempfile

    root = cache_root() / "offload"
    root.mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="offload-", dir=root)
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _parse_dtype(dtype: str | torch.dtype | None):
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise LayerscopeError(f"unknown dtype {dtype!r}; valid: {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


def _load_hf_dir(location, source, fingerprint, name, dtype, device, placement, trust_remote_code) -> Model:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    kwargs = {"dtype": dtype, "trust_remote_code": trust_remote_code}
    kwargs.update(placement or {})
    local = _local_directory(location)
    if local is not None:
        guard.check_directory(local, str(source), trust_remote_code)
    with progress.step(f"Loading {name}"):
        with refused(f"model {source!r}"):
            config = AutoConfig.from_pretrained(location, trust_remote_code=trust_remote_code)
            guard.check_config(config, str(source), dtype, memory=placement is None)
            kind = model_kind(config)
            tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code)
            auto = _causal_lm_class(config) if kind == CAUSAL_LM else AutoModel  # an encoder: no LM head at all
            # mismatched shapes come back in info (and are refused below) rather than as a multi-line error
            module, info = auto.from_pretrained(
                location, output_loading_info=True, ignore_mismatched_sizes=True, **kwargs
            )
        head = missing_head_weights(module, info.get("missing_keys")) if kind == CAUSAL_LM else []
        guard.check_weights(module, info, str(source), allowed_missing=head, encoder=kind != CAUSAL_LM)
    if device is not None and placement is None:
        module = module.to(device)
    head_ok = kind == CAUSAL_LM and not head
    return Model(
        module=module,
        tokenizer=tokenizer,
        source=str(source),
        fingerprint=fingerprint,
        name=name,
        kind=kind,
        head_is_trained=head_ok,
        kind_detail=kind_detail(location),
    )


def _causal_lm_class(config):
    """``AutoModelForCausalLM``, or, for a config class it does not map (the text configs of Emu3 and Mllama,
    which their ``*ForCausalLM`` saves), the transformers class the config's ``architectures`` names when that
    class takes this config class."""
    import transformers
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    if type(config) in MODEL_FOR_CAUSAL_LM_MAPPING:
        return AutoModelForCausalLM
    for name in getattr(config, "architectures", None) or []:
        try:
            named = getattr(transformers, name, None) if name.isidentifier() else None
        except Exception:  # noqa: BLE001 - a name transformers cannot import here
            named = None
        if isinstance(named, type) and getattr(named, "config_class", None) is type(config):
            return named
    return AutoModelForCausalLM


def _local_directory(location) -> Path | None:
    """The directory transformers will read: a local one, or a hub id's snapshot already in the cache."""
    path = Path(location)
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        snapshot = Path(snapshot_download(str(location), local_files_only=True))
    except Exception:  # not cached (transformers then says so in one line)
        return None
    return snapshot if snapshot.is_dir() else None


_HASH_NAME = re.compile(r"^[0-9a-fA-F]{40}(?:[0-9a-fA-F]{24})?$")  # a sha256 cache key or a git commit


def readable_name(*candidates: str | None) -> str | None:
    """The first candidate's last path part (``.gguf`` dropped, made printable by
    :func:`~layerscope.models.names.printable_name`) that is not empty or a hash (40 or 64 hex digits)."""
    for text in candidates:
        if not isinstance(text, str):
            continue
        base = text.replace("\\", "/").rstrip("/").split("/")[-1].strip()
        base = printable_name(base[: -len(".gguf")] if base.lower().endswith(".gguf") else base)
        if base and not _HASH_NAME.match(base):
            return base
    return None


def directory_name(path: Path) -> str:
    """A model directory's display name: the GGUF it was converted from (its ``general.name``), the config's
    ``_name_or_path``, a hub cache snapshot's model name, the folder's name, else the config's ``model_type``;
    never a hash."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        config = {}
    config = config if isinstance(config, dict) else {}
    gguf = config.get("layerscope_source_gguf")
    from_gguf = gguf_general_name(gguf) if isinstance(gguf, str) and Path(gguf).is_file() else None
    resolved = path.resolve()
    hub_cache = resolved.parent.parent.name  # <hub cache>/models--org--name/snapshots/<commit>
    from_hub = hub_cache.split("--")[-1] if hub_cache.startswith("models--") else None
    name = readable_name(from_gguf, gguf, config.get("_name_or_path"), from_hub, resolved.name)
    return name or str(config.get("model_type") or "model")


def directory_fingerprint(path: Path) -> str:
    """A hash of a model directory: its config and the names and sizes of its weight files (no weights read)."""
    digest = hashlib.sha256()
    config = path / "config.json"
    try:
        digest.update(config.read_bytes())
        for item in sorted(path.iterdir()):
            if item.suffix in {".safetensors", ".bin", ".gguf", ".npz"}:
                try:
                    size = item.stat().st_size
                except OSError:  # a broken link or a link loop: the loader names it if it is needed
                    size = -1
                digest.update(f"{item.name}:{size}".encode())
    except OSError as exc:
        raise LayerscopeError(f"cannot read model directory {str(path)!r}: {first_line(exc)}") from None
    return "dir:" + digest.hexdigest()


def _first_line(exc: BaseException) -> str:
    return first_line(exc)
