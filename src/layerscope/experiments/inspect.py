"""Seed 001, first half: inside one prompt, layer by layer.

For each prompt, the residual vector at one position (the answer position ``-1`` by default) at every
point of the residual stream: ``embed`` (the embedding output), ``0``..``n-1`` (each decoder block's
output) and ``norm`` (the final norm's output). From those:
a heatmap (rows = layers, columns = dimensions), similarity metrics against the input embedding of
the expected answer token and between prompts, the logit lens, and layer phases over the prompts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import progress
from ..analysis.cka import cka_matrix, degenerate_layers, mean_cosine_matrix
from ..analysis.phases import find_phases
from ..analysis.residual_error import residual_errors
from ..analysis.similarity import compare
from ..capture import (
    FINAL_NORM,
    CapturePrompt,
    capture_residuals,
    layer_depth,
    layer_name,
)
from ..capture.logit_lens import lens_readout
from ..errors import LayerscopeError
from ..model_spec import ModelSpec, unique_name
from ..models import Model, require_lm_head
from ..models.loading import given_or_loaded
from ..rundir import model_record
from ..runner import execute
from .inspect_config import _ARITHMETIC, DEFAULT_PROMPT, InspectConfig, arithmetic_answer, read_prompts_file  # noqa: F401  (declared in a light module)
from .inspect_result import InspectResult, PromptTokens

#: the most the (prompt x prompt) Gram matrices of a loaded run (one per layer) or its (layer x layer) matrices may
#: take (bytes): a record that lists a million layers is refused, not computed


def tokenize_prompts(model: Model, config: InspectConfig) -> list[PromptTokens]:
    """Token ids, resolved position and target id of every prompt; errors name the bad prompt or target."""
    prompts = config.all_prompts()
    targets = list(config.target) if config.target else None
    if targets is not None and len(targets) == 1:
        targets = targets * len(prompts)
    out = []
    for index, prompt in enumerate(prompts):
        ids = model.encode(prompt, bos=config.bos)
        position = config.position + len(ids) if config.position < 0 else config.position
        if not 0 <= position < len(ids):
            raise LayerscopeError(
                f"position {config.position} is outside prompt {prompt!r} of {len(ids)} tokens; "
                f"valid: {-len(ids)}..{len(ids) - 1}"
            )
        target = targets[index] if targets is not None else arithmetic_answer(prompt)
        target_id = _target_id(model, prompt, ids, target, config.bos) if target is not None else None
        out.append(PromptTokens(prompt, ids, position, model.decode([ids[position]]), target, target_id))
    return out


def _target_id(model: Model, prompt: str, prompt_ids: list[int], target: str, bos: bool) -> int:
    """The first token of ``target`` as it follows ``prompt``: ``prompt + target`` is tokenized whole and the
    first token after the prompt's own tokens is taken (tokenizers that mark word starts would give another
    token for ``target`` alone); if the prompt's tokens are not a prefix of the whole, ``target`` alone."""
    unk = getattr(model.tokenizer, "unk_token_id", None)
    whole = model.encode(prompt + target, bos=bos) if target else []
    if whole[: len(prompt_ids)] == prompt_ids and len(whole) > len(prompt_ids):
        first = whole[len(prompt_ids)]
    else:
        alone = model.encode(target, bos=False) if target else []
        first = alone[0] if alone else None
    if first is None or (unk is not None and first == unk):
        raise LayerscopeError(f"unknown target token {target!r}: the tokenizer gives no known token for it")
    return first


def _depths(model: Model) -> list:
    """Every point of the residual stream: ``embed`` (0), blocks (1..n), the final norm."""
    return [*range(model.n_layers + 1), FINAL_NORM]


def _capture(model: Model, tokens: list[PromptTokens]) -> np.ndarray:
    prompts = [CapturePrompt(tuple(t.ids), ((t.position,),)) for t in tokens]
    captured = capture_residuals(  # (layer, prompt, d)
        model, prompts, _depths(model), description=f"Reading {len(prompts)} prompts in {model.name}"
    )
    return np.ascontiguousarray(np.asarray(captured).transpose(1, 0, 2))


def _target_embeddings(model: Model, tokens: list[PromptTokens]) -> np.ndarray | None:
    """The input embedding of each target token as the model uses it (after any embedding scale)."""
    if any(t.target_id is None for t in tokens):
        return None
    with torch.inference_mode():
        ids = torch.tensor([[t.target_id for t in tokens]], device=model.device)
        return model.parts.embed(ids)[0].float().cpu().numpy()


SIMILARITY_COLUMNS = ["kind", "prompt", "other", "layer", "depth", "cosine", "l1", "l2", "max_abs_diff"]


def similarity_table(
    residuals: np.ndarray, names: list[str], depths: list[int], tokens: list[PromptTokens], targets: np.ndarray | None
) -> pd.DataFrame:
    """Metrics vs each prompt's target embedding per layer, and between every pair of prompts per layer."""
    frames = []
    if targets is not None:
        for p, t in enumerate(tokens):
            metrics = compare(residuals[p], targets[p])
            other = f"embed({t.target_text})"
            frames.append(metrics.assign(kind="target", prompt=t.prompt, other=other, layer=names, depth=depths))
    for a in range(len(tokens)):
        for b in range(a + 1, len(tokens)):
            metrics = compare(residuals[a], residuals[b])
            frames.append(
                metrics.assign(kind="pair", prompt=tokens[a].prompt, other=tokens[b].prompt, layer=names, depth=depths)
            )
    if not frames:
        return pd.DataFrame(columns=SIMILARITY_COLUMNS)
    return pd.concat(frames, ignore_index=True)[SIMILARITY_COLUMNS]


def lens_table(
    model: Model, residuals: np.ndarray, names: list[str], depths: list[int], tokens: list[PromptTokens], k: int
) -> pd.DataFrame:
    """Logit lens per prompt and layer (target rank 1 = top); the final-norm row is decoded without norming again."""
    rows = []
    numbered = enumerate(tokens)
    if len(tokens) >= 8:
        numbered = progress.track(numbered, f"Logit lens over {len(tokens)} prompts", total=len(tokens))
    for p, t in numbered:
        readout = lens_readout(model, residuals[p], k=k, target=t.target_id, normed_from=len(names) - 1)
        for i, (name, depth) in enumerate(zip(names, depths)):
            row = {"prompt_index": p, "prompt": t.prompt, "layer": name, "depth": depth, "target": t.target_text}
            row["top1"] = model.decode([int(readout.top_ids[i, 0])])
            row["p_top1"] = float(readout.top_probs[i, 0])
            row["target_rank"] = int(readout.target_rank[i]) if readout.target_rank is not None else None
            row["target_prob"] = float(readout.target_prob[i]) if readout.target_prob is not None else None
            for j in range(k):
                row[f"top{j + 1}_token"] = model.decode([int(readout.top_ids[i, j])])
                row[f"top{j + 1}_prob"] = float(readout.top_probs[i, j])
            rows.append(row)
    table = pd.DataFrame(rows)
    table["target_rank"] = table["target_rank"].astype("Int64")  # stays an integer beside missing targets
    return table


def comparison_table(a: np.ndarray, b: np.ndarray, names: list[str], depths: list[int]) -> pd.DataFrame:
    """Per-layer agreement of two models' residuals ``(prompt, layer, d)`` on the same prompts, ``a`` the
    reference: :func:`layerscope.analysis.residual_error.residual_errors` under inspect's column names."""
    table = residual_errors(a, b, names, depths).rename(
        columns={"cosine": "mean_cosine", "relative_error": "relative_l2"}
    )
    return table[["layer", "depth", "mean_cosine", "min_cosine", "mean_l2", "relative_l2", "max_abs_diff"]]


def run_inspect(config: InspectConfig, model: Model | None = None, compare_with: Model | None = None) -> InspectResult:
    """Run ``inspect``; loads ``config.model`` (and ``config.compare_model``) unless given loaded. No files written."""
    timings: dict[str, float] = {}
    model = given_or_loaded(config.model, model, timings)
    require_lm_head(model, "inspect")  # the logit lens and the target metrics read it
    tokens = tokenize_prompts(model, config)
    n_rows = model.n_layers + 1
    vocab = int(model.unembedding_matrix.shape[0])
    if config.top_k > vocab:
        raise config.error("top_k", config.top_k, f"is more than the {vocab} tokens of {model.name}'s vocabulary")
    if config.phases is not None and config.phases > n_rows:
        raise LayerscopeError(
            f"{config.phases} phases asked for, but {model.name} has {n_rows} layers to split "
            f"(embed and blocks 0..{model.n_layers - 1}); valid: 1..{n_rows}"
        )

    start = time.perf_counter()
    residuals = _capture(model, tokens)
    points = _depths(model)
    names = [layer_name(d) for d in points]
    depths = [layer_depth(d, model.n_layers) for d in points]
    timings["capture"] = time.perf_counter() - start

    start = time.perf_counter()
    similarity = similarity_table(residuals, names, depths, tokens, _target_embeddings(model, tokens))
    lens = lens_table(model, residuals, names, depths, tokens, config.top_k)
    stack = residuals[:, :-1].transpose(1, 0, 2)  # (layer, prompt, d), embed..n-1
    matrices, phases = {}, None
    if len(tokens) >= 3:
        matrices = {"linear CKA": cka_matrix(stack), "mean cosine": mean_cosine_matrix(stack)}
        phases = find_phases(matrices["linear CKA"], n_phases=config.phases, degenerate=degenerate_layers(stack))
    timings["analysis"] = time.perf_counter() - start

    comparison = None
    records = [model_record(model)]
    if config.compare_model is not None or compare_with is not None:
        spec = config.compare_model if config.compare_model is not None else ModelSpec.of(compare_with)
        other = given_or_loaded(spec, compare_with, timings)
        require_lm_head(other, "inspect")
        start = time.perf_counter()
        if other.d_model != model.d_model:
            raise LayerscopeError(
                f"cannot compare {model.name!r} (d_model {model.d_model}) with {other.name!r} (d_model {other.d_model}); "
                "the residual widths must match"
            )
        other_res = _capture(other, tokenize_prompts(other, config))
        n = min(residuals.shape[1], other_res.shape[1]) - 1  # shared depths, then the final norm
        picks = [*range(n), -1]
        comparison = comparison_table(
            residuals[:, picks], other_res[:, picks], [names[i] for i in picks], [depths[i] for i in picks]
        )
        records.append(model_record(other, unique_name(other.name, {model.name})))
        timings["compare"] = time.perf_counter() - start

    return InspectResult(
        config=config,
        tokens=tokens,
        residuals=residuals,
        layer_names=names,
        similarity=similarity,
        lens=lens,
        phases=phases,
        matrices=matrices,
        comparison=comparison,
        models=records,
        timings=timings,
    )


def inspect(
    prompts: str | Sequence[str] = (),
    *,
    model: ModelSpec | Model | str | None = None,
    prompts_file: str | Path | None = None,
    position: int = -1,
    target: str | Sequence[str] = (),
    bos: bool = True,
    top_k: int = 5,
    phases: int | None = None,
    compare_model: ModelSpec | Model | str | None = None,
    raw: bool = False,
    out: str | Path | None = None,
) -> InspectResult:
    """Residuals of prompts at one position in every layer, with similarity, logit lens and phases (seed 001).

    Args:
        prompts: one prompt or several.
        model, compare_model: a loaded model, a source, a :class:`ModelSpec` (for ``dtype``,
            ``trust_remote_code``, ...), or None for the default model; ``compare_model=None`` compares nothing.
        target: the expected answer, one for all prompts or one per prompt (default: computed for arithmetic).
        phases: the number of layer phases (None: chosen).
        raw: heatmap of raw values instead of each layer divided by its RMS.
        out: also write the run directory there.

    Example:
        >>> seen = layerscope.inspect(["5+2=", "3+4=", "9-2=", "2*3="])
        >>> seen.figure()                  # heatmaps, rows = layers embed, 0..n-1, norm
        >>> seen.lens.query("layer == 'norm'")[["prompt", "top1", "target_rank"]]
        >>> seen.phases.describe()         # e.g. 'embed..2 | 3..10 | 11..17'
    """
    config = InspectConfig(
        model=ModelSpec.of(model),
        prompts=(prompts,) if isinstance(prompts, str) else tuple(prompts),
        prompts_file=None if prompts_file is None else os.fspath(prompts_file),
        position=position,
        target=(target,) if isinstance(target, str) else tuple(target or ()),
        bos=bos,
        top_k=top_k,
        phases=phases,
        compare_model=None if compare_model is None else ModelSpec.of(compare_model),
        raw=raw,
    )
    loaded = model if isinstance(model, Model) else None
    other = compare_model if isinstance(compare_model, Model) else None
    return execute(config, loaded if other is None else [loaded, other], out=out)
