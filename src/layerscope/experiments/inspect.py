"""Seed 001, first half: inside one prompt, layer by layer.

For each prompt, the residual vector at one position (the answer position ``-1`` by default) in every
layer: the embedding output, each decoder layer's output, and the final norm's output. From those:
a heatmap (rows = layers, columns = dimensions), similarity metrics against the input embedding of
the expected answer token and between prompts, the logit lens, and layer phases over the prompts.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..analysis.cka import cka_matrix, mean_cosine_matrix
from ..analysis.phases import Phases, find_phases
from ..analysis.similarity import compare
from ..capture import FINAL_NORM, CapturePrompt, capture_residuals, layer_name
from ..capture.logit_lens import lens_readout
from ..errors import LayerscopeError
from ..models import Model, load_model, model_for_run

_ARITHMETIC = re.compile(r"^\s*(\d+)\s*([-+*/])\s*(\d+)\s*=\s*$")


def arithmetic_answer(prompt: str) -> str | None:
    """The answer of a prompt like ``"5+2="`` (``"7"``), or None when it is not simple arithmetic.

    Division counts only when exact; a negative result keeps its sign (``"2-5="`` -> ``"-3"``).
    """
    match = _ARITHMETIC.match(prompt)
    if not match:
        return None
    a, op, b = int(match[1]), match[2], int(match[3])
    if op == "/":
        return str(a // b) if b and a % b == 0 else None
    return str({"+": a + b, "-": a - b, "*": a * b}[op])


@dataclass
class InspectConfig:
    """What ``layerscope inspect`` runs.

    Attributes:
        prompts: the prompts, e.g. ``["5+2=", "3+4="]``.
        position: the token position read in every prompt (negative counts from the end).
        targets: the expected answer per prompt (one for all, or one each); None: arithmetic prompts get
            their computed answer, others none.
        bos: put the BOS token first.
        top_k: tokens listed per layer by the logit lens.
        n_phases: number of layer phases (None: chosen by contrast).
        model: the model source; compare_model: a second source to run the same prompts through.
        raw_heatmap: draw raw values; by default each layer's row is divided by its RMS, since the
            residual's scale grows by orders of magnitude with depth (the raw mean/RMS stay in the strip).
        trust_remote_code: let the compared model's repository run its own code when loaded.
    """

    prompts: list[str] = field(default_factory=lambda: ["5+2="])
    position: int = -1
    targets: list[str] | None = None
    bos: bool = True
    top_k: int = 5
    n_phases: int | None = None
    model: str | None = None
    compare_model: str | None = None
    raw_heatmap: bool = False
    trust_remote_code: bool = False


@dataclass
class PromptTokens:
    """One prompt as fed: ids, the position read, and the target token (if any)."""

    prompt: str
    ids: list[int]
    position: int
    target_text: str | None
    target_id: int | None


def validate(config: InspectConfig) -> None:
    """Check what can be checked before a model loads."""
    if not config.prompts:
        raise LayerscopeError("no prompt given; use --prompt '5+2=' (repeatable) or --prompts-file")
    for prompt in config.prompts:
        if not prompt.strip():
            raise LayerscopeError(f"empty prompt {prompt!r}; every prompt needs at least one character")
    if config.targets is not None and len(config.targets) not in (1, len(config.prompts)):
        raise LayerscopeError(
            f"{len(config.targets)} targets for {len(config.prompts)} prompts; give one target for all or one per prompt"
        )
    if config.top_k < 1:
        raise LayerscopeError(f"--top-k {config.top_k} must be at least 1")
    if config.n_phases is not None and config.n_phases < 1:
        raise LayerscopeError(f"--phases {config.n_phases} must be at least 1")


def tokenize_prompts(model: Model, config: InspectConfig) -> list[PromptTokens]:
    """Token ids, resolved position and target id of every prompt; errors name the bad prompt or target."""
    targets = config.targets
    if targets is not None and len(targets) == 1:
        targets = targets * len(config.prompts)
    out = []
    for index, prompt in enumerate(config.prompts):
        ids = model.encode(prompt, bos=config.bos)
        position = config.position + len(ids) if config.position < 0 else config.position
        if not 0 <= position < len(ids):
            raise LayerscopeError(
                f"position {config.position} is outside prompt {prompt!r} of {len(ids)} tokens; "
                f"valid: {-len(ids)}..{len(ids) - 1}"
            )
        target = targets[index] if targets is not None else arithmetic_answer(prompt)
        target_id = _target_id(model, prompt, ids, target, config.bos) if target is not None else None
        out.append(PromptTokens(prompt, ids, position, target, target_id))
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


@dataclass
class InspectResult:
    """What ``inspect`` found.

    Attributes:
        residuals: ``(prompt, layer, d_model)`` float32; layers are ``0`` (embedding output), ``1..n_layers``, ``norm``.
        layer_labels: ``["0", "1", ..., "18", "norm"]``.
        similarity: one row per (kind, prompt(s), layer): metrics vs the target's input embedding
            (``kind="target"``) and between the same layer of two prompts (``kind="pair"``).
        lens: one row per (prompt, layer): top-k tokens and probabilities, target rank and probability.
        phases: layer phases over the prompts (None with fewer than 3 prompts).
        matrices: ``{"linear CKA": (L, L), "mean cosine": (L, L)}`` over the prompts, layers ``0..n``.
        comparison: per-layer metrics against ``compare_model`` (None without one).
    """

    config: InspectConfig
    tokens: list[PromptTokens]
    residuals: np.ndarray
    layer_labels: list[str]
    similarity: pd.DataFrame
    lens: pd.DataFrame
    phases: Phases | None
    matrices: dict[str, np.ndarray]
    comparison: pd.DataFrame | None
    model_name: str
    timings: dict[str, float]
    models: list = field(default_factory=list, repr=False)

    def _panels(self):
        from ..render.heatmap import ResidualPanel

        panels = []
        for tokens, values in zip(self.tokens, self.residuals):
            token = self.models[0].decode([tokens.ids[tokens.position]]) if self.models else ""
            title = f"{tokens.prompt} @ {tokens.position} ({token!r})"
            rms = np.sqrt((values.astype(np.float64) ** 2).mean(axis=1))
            shown = values if self.config.raw_heatmap else values / np.where(rms > 0, rms, 1.0)[:, None]
            panels.append(ResidualPanel(title, shown, values.mean(axis=1), rms))
        return panels

    def _zmax(self) -> float:
        # A robust shared colour range: the 99th percentile of |value| over all panels as drawn.
        return float(np.percentile(np.abs(np.stack([p.values for p in self._panels()])), 99)) or 1.0

    def heatmap_title(self) -> str:
        scale = "raw values" if self.config.raw_heatmap else "each layer divided by its RMS"
        return f"{self.model_name}: residual stream by layer ({scale})"

    def figure(self):
        """Heatmaps of the residual at the position, every layer, prompts side by side (shared colours)."""
        from ..render.heatmap import residual_figure

        return residual_figure(self._panels(), self.layer_labels, self._zmax(), self.heatmap_title())

    def lens_figure(self):
        """Logit lens: probability of each prompt's target per layer, top-1 token as text."""
        from ..render.heatmap import lens_figure

        prob, top, prompts = self._lens_grid()
        return lens_figure(prob, top, prompts, self.layer_labels, f"{self.model_name}: logit lens")

    def phases_figure(self):
        from ..render.heatmap import matrix_figure

        labels = self.layer_labels[:-1]
        bounds = self.phases.boundaries if self.phases else []
        return matrix_figure(self.matrices, labels, f"{self.model_name}: layer-by-layer similarity", bounds)

    def _lens_grid(self):
        prompts = [t.prompt for t in self.tokens]
        prob = np.zeros((len(self.layer_labels), len(prompts)))
        top = [["" for _ in prompts] for _ in self.layer_labels]
        for j, prompt in enumerate(prompts):
            rows = self.lens[self.lens["prompt_index"] == j]
            for i, (_, row) in enumerate(rows.iterrows()):
                prob[i, j] = row["target_prob"] if pd.notna(row["target_prob"]) else 0.0
                top[i][j] = str(row["top1"])
        return prob, top, prompts

    def save(self, out: str | Path) -> Path:
        """Write the run directory (see :func:`save_inspect`)."""
        from .inspect_outputs import save_inspect

        return save_inspect(self, Path(out))


def _layers(model: Model) -> list:
    return [*range(model.n_layers + 1), FINAL_NORM]


def _capture(model: Model, tokens: list[PromptTokens]) -> np.ndarray:
    prompts = [CapturePrompt(tuple(t.ids), ((t.position,),)) for t in tokens]
    captured = capture_residuals(model, prompts, _layers(model))  # (layer, prompt, d)
    return np.ascontiguousarray(np.asarray(captured).transpose(1, 0, 2))


def _target_embeddings(model: Model, tokens: list[PromptTokens]) -> np.ndarray | None:
    """The input embedding of each target token as the model uses it (after any embedding scale)."""
    if any(t.target_id is None for t in tokens):
        return None
    with torch.inference_mode():
        ids = torch.tensor([[t.target_id for t in tokens]], device=model.device)
        return model.parts.embed(ids)[0].float().cpu().numpy()


def similarity_table(residuals: np.ndarray, labels: list[str], tokens: list[PromptTokens], targets: np.ndarray | None) -> pd.DataFrame:
    """Metrics vs each prompt's target embedding per layer, and between every pair of prompts per layer."""
    frames = []
    if targets is not None:
        for p, t in enumerate(tokens):
            metrics = compare(residuals[p], targets[p])
            frames.append(metrics.assign(kind="target", prompt=t.prompt, other=f"embed({t.target_text})", layer=labels))
    for a in range(len(tokens)):
        for b in range(a + 1, len(tokens)):
            metrics = compare(residuals[a], residuals[b])
            frames.append(metrics.assign(kind="pair", prompt=tokens[a].prompt, other=tokens[b].prompt, layer=labels))
    if not frames:
        return pd.DataFrame(columns=["kind", "prompt", "other", "layer", "cosine", "l1", "l2", "max_abs_diff"])
    table = pd.concat(frames, ignore_index=True)
    return table[["kind", "prompt", "other", "layer", "cosine", "l1", "l2", "max_abs_diff"]]


def lens_table(model: Model, residuals: np.ndarray, labels: list[str], tokens: list[PromptTokens], k: int) -> pd.DataFrame:
    """Logit lens per prompt and layer; the final-norm row is decoded without norming again."""
    rows = []
    for p, t in enumerate(tokens):
        readout = lens_readout(model, residuals[p], k=k, target=t.target_id, normed_from=len(labels) - 1)
        for i, label in enumerate(labels):
            row = {"prompt_index": p, "prompt": t.prompt, "layer": label, "target": t.target_text}
            row["top1"] = model.decode([int(readout.top_ids[i, 0])])
            row["p_top1"] = float(readout.top_probs[i, 0])
            row["target_rank"] = int(readout.target_rank[i]) if readout.target_rank is not None else None
            row["target_prob"] = float(readout.target_prob[i]) if readout.target_prob is not None else None
            for j in range(k):
                row[f"top{j + 1}_token"] = model.decode([int(readout.top_ids[i, j])])
                row[f"top{j + 1}_prob"] = float(readout.top_probs[i, j])
            rows.append(row)
    return pd.DataFrame(rows)


def comparison_table(a: np.ndarray, b: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """Per-layer agreement of two models' residuals ``(prompt, layer, d)`` on the same prompts."""
    rows = []
    for i, label in enumerate(labels):
        metrics = compare(a[:, i], b[:, i])
        norm = np.linalg.norm(a[:, i], axis=-1)
        rows.append(
            {
                "layer": label,
                "mean_cosine": float(metrics["cosine"].mean()),
                "min_cosine": float(metrics["cosine"].min()),
                "mean_l2": float(metrics["l2"].mean()),
                "relative_l2": float((metrics["l2"] / np.where(norm > 0, norm, np.nan)).mean()),
                "max_abs_diff": float(metrics["max_abs_diff"].max()),
            }
        )
    return pd.DataFrame(rows)


def run_inspect(config: InspectConfig, model: Model | None = None, compare_with: Model | None = None) -> InspectResult:
    """Run ``inspect``; loads ``config.model`` (and ``config.compare_model``) unless given loaded."""
    validate(config)
    timings: dict[str, float] = {}
    model = model_for_run(model, config.model, timings)
    tokens = tokenize_prompts(model, config)
    if config.n_phases is not None and config.n_phases > model.n_layers + 1:
        raise LayerscopeError(f"--phases {config.n_phases}: {model.name} has {model.n_layers + 1} layers; valid: 1..{model.n_layers + 1}")

    start = time.perf_counter()
    residuals = _capture(model, tokens)
    labels = [layer_name(i) for i in _layers(model)]
    timings["capture"] = time.perf_counter() - start

    start = time.perf_counter()
    similarity = similarity_table(residuals, labels, tokens, _target_embeddings(model, tokens))
    lens = lens_table(model, residuals, labels, tokens, config.top_k)
    stack = residuals[:, :-1].transpose(1, 0, 2)  # (layer, prompt, d), embed..n
    matrices, phases = {}, None
    if len(tokens) >= 3:
        matrices = {"linear CKA": cka_matrix(stack), "mean cosine": mean_cosine_matrix(stack)}
        phases = find_phases(matrices["linear CKA"], n_phases=config.n_phases)
    timings["analysis"] = time.perf_counter() - start

    comparison, models = None, [model]
    if config.compare_model is not None or compare_with is not None:
        start = time.perf_counter()
        other = compare_with or load_model(config.compare_model, trust_remote_code=config.trust_remote_code)
        if other.d_model != model.d_model:
            raise LayerscopeError(
                f"cannot compare {model.name!r} (d_model {model.d_model}) with {other.name!r} (d_model {other.d_model}); "
                "the residual widths must match"
            )
        other_tokens = tokenize_prompts(other, config)
        other_res = _capture(other, other_tokens)
        n = min(residuals.shape[1], other_res.shape[1]) - 1  # shared layers, then the final norm
        picks = [*range(n), -1]
        comparison = comparison_table(residuals[:, picks], other_res[:, picks], [labels[i] for i in picks])
        models.append(other)
        timings["compare"] = time.perf_counter() - start

    return InspectResult(
        config=config, tokens=tokens, residuals=residuals, layer_labels=labels, similarity=similarity, lens=lens,
        phases=phases, matrices=matrices, comparison=comparison, model_name=model.name, timings=timings, models=models,
    )


def inspect(
    prompts: str | list[str] = "5+2=",
    *,
    model: str | Model | None = None,
    position: int = -1,
    targets: str | list[str] | None = None,
    bos: bool = True,
    top_k: int = 5,
    n_phases: int | None = None,
    compare_model: str | Model | None = None,
    raw_heatmap: bool = False,
    out: str | Path | None = None,
) -> InspectResult:
    """Residuals of prompts at one position in every layer, with similarity, logit lens and phases.

    Example:
        >>> result = layerscope.inspect(["5+2=", "3+4=", "9-2=", "2*3="])
        >>> result.figure()                # heatmaps, rows = layers
        >>> result.lens.query("layer == 'norm'")[["prompt", "top1", "target_rank"]]
        >>> result.phases.describe()
    """
    loaded = model if isinstance(model, Model) else None
    other = compare_model if isinstance(compare_model, Model) else None
    config = InspectConfig(
        prompts=[prompts] if isinstance(prompts, str) else list(prompts),
        position=position,
        targets=[targets] if isinstance(targets, str) else (list(targets) if targets is not None else None),
        bos=bos,
        top_k=top_k,
        n_phases=n_phases,
        model=loaded.source if loaded else model,
        compare_model=other.source if other else compare_model,
        raw_heatmap=raw_heatmap,
    )
    result = run_inspect(config, loaded, other)
    if out is not None:
        result.save(out)
    return result
