"""Named stages inside a sentence-embedding model: every transformer layer, then pooling, each Dense, Normalize.

sentence-transformers runs a model as a chain of modules (Transformer -> Pooling -> Dense... -> Normalize) and
returns only the last output. Here hooks read one sentence vector per stage, named as layers are everywhere
in layerscope (:mod:`layerscope.capture.layer_spec`):

- ``embed``: the embedding output as the layers receive it (HF ``hidden_states[0]``), and ``<k>``: the output
  of transformer layer ``k`` (``(batch, seq, d)``), each pooled by the model's own Pooling module (same
  mode, same mask, same prompt handling), so every depth gives a sentence vector;
- ``pooling``, ``dense.0``, ``dense.1``, ..., ``normalize``: the ``sentence_embedding`` after that module.

The last stage equals ``SentenceTransformer.encode``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .. import progress
from ..errors import LayerscopeError
from ..models.architecture import find_parts
from .layer_spec import layer_name


@dataclass
class StageVectors:
    """Sentence vectors at each named stage.

    Attributes:
        names: stage names in model order, e.g. ``["embed", "0", ..., "23", "pooling", "dense.0", "dense.1", "normalize"]``.
        vectors: ``{stage: (n_texts, d_stage) float32}``.
    """

    names: list[str]
    vectors: dict[str, np.ndarray]


def stage_modules(st) -> list[tuple[str, torch.nn.Module]]:
    """``[(stage name, module)]`` for the modules after the Transformer: ``pooling``, ``dense.0``, ..., ``normalize``."""
    counts: dict[str, int] = {}
    out = []
    for module in list(st)[1:]:
        kind = type(module).__name__.lower()
        index = counts.get(kind, 0)
        counts[kind] = index + 1
        repeated = sum(type(m).__name__.lower() == kind for m in list(st)[1:]) > 1 or kind == "dense"
        out.append((f"{kind}.{index}" if repeated else kind, module))
    return out


def transformer_layers(st) -> torch.nn.ModuleList:
    """The layer stack of the model inside the first (Transformer) module."""
    inner = getattr(st[0], "auto_model", None)
    if inner is None:
        raise LayerscopeError(
            f"the first module of this model is {type(st[0]).__name__}, not a Transformer; no layers to read"
        )
    n_layers = int(inner.config.get_text_config().num_hidden_layers)
    return find_parts(inner, n_layers).layers


@contextlib.contextmanager
def _hooks(st, pooling, layers, batch_out: dict) -> Iterator[None]:
    """Forward hooks that fill ``batch_out`` with this batch's stage vectors; always removed."""
    hidden: list[torch.Tensor | None] = [None] * (len(layers) + 1)  # by depth: 0 = embed, k + 1 = layer k
    handles = []

    def on_embed(_module, args, kwargs):
        hidden[0] = args[0] if args else kwargs["hidden_states"]

    def on_layer(index):
        def hook(_module, _args, output):
            hidden[index + 1] = output[0] if isinstance(output, (tuple, list)) else output

        return hook

    def on_pooling(_module, args, _output):
        features = args[0]
        for depth, states in enumerate(hidden):
            pooled = pooling.forward({**features, "token_embeddings": states})["sentence_embedding"]
            batch_out[layer_name(depth)] = pooled.float().cpu().numpy()

    def on_stage(name):
        def hook(_module, _args, output):
            batch_out[name] = output["sentence_embedding"].float().cpu().numpy()

        return hook

    try:
        handles.append(layers[0].register_forward_pre_hook(on_embed, with_kwargs=True))
        handles += [layer.register_forward_hook(on_layer(i)) for i, layer in enumerate(layers)]
        if pooling is not None:
            handles.append(pooling.register_forward_hook(on_pooling))
        handles += [module.register_forward_hook(on_stage(name)) for name, module in stage_modules(st)]
        yield
    finally:
        for handle in handles:
            handle.remove()


def capture_stages(
    embedder, texts: Sequence[str], *, prompt_name: str | None = None, batch_size: int = 32
) -> StageVectors:
    """Sentence vectors of ``texts`` at every stage of ``embedder`` (a :class:`~layerscope.models.embedding.Embedder`).

    Example:
        >>> stages = capture_stages(load_embedder("embeddinggemma"), ["a cat", "a dog"])
        >>> stages.names[:2], stages.names[-4:], stages.vectors["dense.0"].shape
        (['embed', '0'], ['pooling', 'dense.0', 'dense.1', 'normalize'], (2, 3072))
    """
    embedder.check_prompt(prompt_name)
    texts = [str(t) for t in texts]
    if not texts:
        raise LayerscopeError("no texts: give at least one")
    st = embedder.module
    layers = transformer_layers(st)
    stages = stage_modules(st)
    pooling = next((m for name, m in stages if name.startswith("pooling")), None)
    depths = [layer_name(d) for d in range(len(layers) + 1)] if pooling is not None else []
    names = depths + [n for n, _ in stages]
    prompt = embedder.prompts.get(prompt_name) if prompt_name else None
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    starts = range(0, len(texts), batch_size)
    with torch.inference_mode():
        for start in progress.track(starts, f"Capturing {len(names)} stages", total=len(starts)):
            batch_out: dict[str, np.ndarray] = {}
            features = st.preprocess(texts[start : start + batch_size], prompt=prompt)
            features = {k: v.to(st.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
            with _hooks(st, pooling, layers, batch_out):
                st(features)
            for name in names:
                parts[name].append(batch_out[name])
    return StageVectors(names=names, vectors={name: np.concatenate(parts[name]) for name in names})
