"""Seed 001, first half: inside one prompt, layer by layer.

For each prompt, the residual vector at one position (the answer position ``-1`` by default) at every
point of the residual stream: ``embed`` (the embedding output), ``0``..``n-1`` (each decoder block's
output) and ``norm`` (the final norm's output). From those:
a heatmap (rows = layers, columns = dimensions), similarity metrics against the input embedding of
the expected answer token and between prompts, the logit lens, and layer phases over the prompts.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from .. import progress
from ..analysis.cka import cka_matrix, degenerate_layers, mean_cosine_matrix
from ..analysis.phases import Phases, find_phases
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
from ..experiment import ExperimentConfig, Result, option
from ..model_spec import ModelSpec, unique_name
from ..models import Model, require_lm_head
from ..rundir import model_record
from ..runner import execute

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


def read_prompts_file(path: str) -> list[str]:
    """The non-blank lines of a text file; :class:`LayerscopeError` when it cannot be read or holds none."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LayerscopeError(f"cannot be read: {exc}") from None
    prompts = [line for line in lines if line.strip()]
    if not prompts:
        raise LayerscopeError("holds no prompt; give one prompt per line")
    return prompts


DEFAULT_PROMPT = "5+2="


@dataclass(frozen=True, kw_only=True)
class InspectConfig(ExperimentConfig):
    """What ``layerscope inspect`` runs.

    Attributes:
        model: which model (default: the embedded Gemma 3 270M).
        prompts: the prompts, e.g. ``("5+2=", "3+4=")`` (``--prompt``, repeated); with neither prompts
            nor ``prompts_file``: ``("5+2=",)``.
        prompts_file: a text file with one prompt per line, read after ``prompts``.
        position: the token position read in every prompt (negative counts from the end).
        target: the expected answer (``--target``, repeated): one for all prompts, or one per prompt;
            empty: arithmetic prompts get their computed answer, others none.
        bos: put the BOS token first (``--no-bos`` turns it off).
        top_k: tokens listed per layer by the logit lens.
        phases: number of layer phases (None: chosen by silhouette).
        compare_model: a second model to run the same prompts through (``--compare-model``; from the
            command line it takes the same ``--dtype``/``--device-map``/``--trust-remote-code``).
        raw: draw raw values in the heatmap; by default each layer's row is divided by its RMS, since the
            residual's scale grows by orders of magnitude with depth (the raw mean/RMS stay in the strip).
    """

    experiment = "inspect"

    model: ModelSpec = option(ModelSpec(), flag="--model")
    prompts: tuple[str, ...] = option((), flag="--prompt", metavar="TEXT", help="a prompt; repeatable (default '5+2=')")
    prompts_file: str | None = option(None, metavar="FILE", help="a text file with one prompt per line")
    position: int = option(-1, help="token position to read (default -1, the last)")
    target: tuple[str, ...] = option(
        (),
        metavar="TEXT",
        help="expected answer (one for all prompts or one per prompt); arithmetic prompts like '5+2=' get theirs "
        "computed",
    )
    bos: bool = option(True, flag="--no-bos", help="do not put the BOS token first")
    top_k: int = option(5, minimum=1, help="tokens listed per layer by the logit lens (default 5)")
    phases: int | None = option(None, minimum=1, metavar="K", help="number of layer phases (default: chosen)")
    compare_model: ModelSpec | None = option(
        None,
        flag="--compare-model",
        metavar="M",
        help="a second model to compare layer by layer (takes the same --dtype, --device-map, --trust-remote-code)",
    )
    raw: bool = option(False, help="heatmap of raw values (default: each layer divided by its RMS)")

    def all_prompts(self) -> list[str]:
        """``prompts``, then the lines of ``prompts_file``; ``["5+2="]`` when both are empty."""
        prompts = list(self.prompts)
        if self.prompts_file is not None:
            try:
                prompts += read_prompts_file(self.prompts_file)
            except LayerscopeError as exc:
                raise self.error("prompts_file", self.prompts_file, str(exc)) from None
        return prompts or [DEFAULT_PROMPT]

    def validate(self) -> None:
        super().validate()
        if isinstance(self.prompts, str) or isinstance(self.target, str):
            name = "prompts" if isinstance(self.prompts, str) else "target"
            raise self.error(name, getattr(self, name), "must be a tuple of texts (the Python API accepts one text)")
        if self.prompts_file is not None and not str(self.prompts_file).strip():
            raise self.error("prompts_file", self.prompts_file, "is empty; give a text file with one prompt per line")
        prompts = self.all_prompts()
        for prompt in prompts:
            if not prompt.strip():
                raise self.error("prompts", prompt, "is empty; every prompt needs at least one character")
        if self.target and len(self.target) not in (1, len(prompts)):
            raise self.error(
                "target",
                self.target,
                f"gives {len(self.target)} targets for {len(prompts)} prompt{'s' if len(prompts) != 1 else ''}; "
                "give one for all prompts or one per prompt",
            )

    def command(self) -> list[str]:
        """As :meth:`ExperimentConfig.command`, with ``--compare-model SOURCE`` alone (its options are the
        model's: one ``--dtype``/``--trust-remote-code`` serves both on the command line)."""
        argv = ExperimentConfig.command(replace(self, compare_model=None))
        if self.compare_model is not None:
            argv += ["--compare-model", self.compare_model.value]
        return argv

    def run(self, model=None) -> InspectResult:
        """``model``: a loaded model, or ``[model, compare_model]`` (either may be None: loaded here)."""
        other = None
        if isinstance(model, (list, tuple)):
            model, other = model
        return run_inspect(self, model, other)


@dataclass(frozen=True)
class PromptTokens:
    """One prompt as fed: ids, the position read (and its token), and the target token (if any)."""

    prompt: str
    ids: list[int]
    position: int
    token: str
    target_text: str | None
    target_id: int | None


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


@dataclass(kw_only=True, repr=False)
class InspectResult(Result):
    """What ``inspect`` found.

    Layers are named ``embed`` (the embedding output), ``0``..``n-1`` (the output of decoder block k) and
    ``norm`` (the final norm's output); tables carry the name in ``layer`` and the depth (0 = ``embed``,
    ``n + 1`` = ``norm``) in ``depth``.

    Attributes:
        tokens: each prompt as fed (ids, position read, target).
        residuals: ``(prompt, layer, d_model)`` float32, layers ``embed, 0..n-1, norm``.
        layer_names: ``["embed", "0", ..., "17", "norm"]``, the rows of ``residuals``.
        similarity: one row per (kind, prompt(s), layer): metrics vs the target's input embedding
            (``kind="target"``) and between the same layer of two prompts (``kind="pair"``).
        lens: one row per (prompt, layer): top-k tokens and probabilities, the target's rank (1 = top)
            and probability.
        phases: layer phases over the prompts, layers ``embed..n-1`` (None with fewer than 3 prompts).
        matrices: ``{"linear CKA": (L, L), "mean cosine": (L, L)}`` over the prompts, layers ``embed..n-1``.
        comparison: per-layer metrics against ``compare_model`` (None without one).
    """

    config: InspectConfig
    tokens: list[PromptTokens]
    residuals: np.ndarray
    layer_names: list[str]
    similarity: pd.DataFrame
    lens: pd.DataFrame
    phases: Phases | None
    matrices: dict[str, np.ndarray]
    comparison: pd.DataFrame | None

    main_file: ClassVar[str] = "heatmap.html"

    @property
    def model_name(self) -> str:
        return self.model_names[0] if self.models else "model"

    @property
    def phase_layers(self) -> list[str]:
        """The layers the phases and matrices cover: ``embed..n-1`` (the final norm is left out)."""
        return self.layer_names[:-1]

    # ----- figures -----------------------------------------------------------------------------------
    def _panels(self):
        from ..render.heatmap import ResidualPanel, visible_token

        panels, names = [], []
        for tokens, values in zip(self.tokens, self.residuals):
            names.append(unique_name(tokens.prompt, names))  # a repeated prompt becomes "5+2= (2)"
            detail = f"position {tokens.position}, token {visible_token(tokens.token)}"
            rms = np.sqrt((values.astype(np.float64) ** 2).mean(axis=1))
            shown = values if self.config.raw else values / np.where(rms > 0, rms, 1.0)[:, None]
            panels.append(ResidualPanel(names[-1], shown, values.mean(axis=1), rms, detail))
        return panels

    @staticmethod
    def _zmax(panels) -> float:
        # A robust shared colour range: the 99th percentile of |value| over all panels as drawn.
        return float(np.percentile(np.abs(np.stack([p.values for p in panels])), 99)) or 1.0

    def heatmap_title(self) -> str:
        scale = "raw values" if self.config.raw else "rows ÷ their RMS"
        return f"{self.model_name}: residual at position {self.config.position} by layer ({scale})"

    def _value_label(self) -> str:
        return "value" if self.config.raw else "value / layer RMS"

    def figure(self, max_panels: int | None = None):
        """Heatmaps of the residual at the position, every layer, with each layer's raw mean and RMS in a
        narrow strip. Up to ``max_panels`` prompts (default
        :data:`~layerscope.render.heatmap.MAX_PANELS`) side by side on one colour scale; more: one prompt
        at a time, chosen from a dropdown."""
        from ..render.heatmap import MAX_PANELS, residual_figure

        panels = self._panels()
        return residual_figure(
            panels,
            self.layer_names,
            self._zmax(panels),
            self.heatmap_title(),
            value_label=self._value_label(),
            max_panels=max_panels or MAX_PANELS,
        )

    def heatmap_png(self, max_panels: int | None = None):
        """:meth:`figure` as a matplotlib figure: the first ``max_panels`` prompts, a caption counting the rest."""
        from ..render.heatmap import MAX_PANELS, residual_png

        panels = self._panels()
        return residual_png(
            panels,
            self.layer_names,
            self._zmax(panels),
            self.heatmap_title(),
            value_label=self._value_label(),
            max_panels=max_panels or MAX_PANELS,
            html_name=self.main_file,
        )

    def lens_figure(self):
        """Logit lens: probability of each prompt's target per layer, top-1 token as text."""
        from ..render.heatmap import lens_figure

        prob, top, prompts, hits, hover = self._lens_grid()
        title = f"{self.model_name}: logit lens (colour: p(target); outlined: top-1 is the target)"
        return lens_figure(prob, top, prompts, self.layer_names, title, hits=hits, hover=hover)

    def lens_png(self):
        """:meth:`lens_figure` as a matplotlib figure."""
        from ..render.heatmap import lens_png

        prob, top, prompts, hits, _ = self._lens_grid()
        title = f"{self.model_name}: logit lens (colour: p(target); outlined: top-1 is the target)"
        return lens_png(prob, top, prompts, self.layer_names, title, hits=hits)

    def phases_matrices(self):
        """The layer-by-layer linear CKA and mean cosine matrices with the phase boundaries, as one
        :class:`~layerscope.render.matrix_figure.MatrixFigure`. CKA is undefined for a layer whose vectors are
        all alike across the prompts (the embedding of prompts that end with one token): its row and column are
        NaN (gray), not the 0 that :func:`~layerscope.analysis.cka.cka_matrix` stores by convention."""
        from ..render.matrix_figure import MatrixFigure

        matrices = dict(self.matrices)
        if "linear CKA" in matrices:
            alike = degenerate_layers(self.residuals[:, : len(self.phase_layers)].transpose(1, 0, 2))
            if alike.any():
                cka = np.array(matrices["linear CKA"], dtype=float)
                cka[alike, :] = np.nan
                cka[:, alike] = np.nan
                matrices["linear CKA"] = cka
        bounds = self.phases.boundaries if self.phases else []
        return MatrixFigure(f"{self.model_name}: layer-by-layer similarity", matrices, self.phase_layers, bounds)

    def phases_figure(self):
        """The layer-by-layer linear CKA and mean cosine matrices, phase boundaries dotted (3+ prompts)."""
        return self.phases_matrices().plotly()

    def phases_png(self):
        """:meth:`phases_figure` as a matplotlib figure (the same description)."""
        return self.phases_matrices().png()

    def _lens_grid(self):
        """``(prob, top1, prompts, hits, hover)``: per (layer, prompt) the target's probability, the top-1
        token, whether it is the target, and a hover text with the top-k and the target's rank."""
        from ..render.heatmap import visible_token

        prompts: list[str] = []  # column names: a repeated prompt becomes "5+2= (2)"
        for t in self.tokens:
            prompts.append(unique_name(t.prompt, prompts))
        shape = (len(self.layer_names), len(self.tokens))
        prob, hits = np.zeros(shape), np.zeros(shape, dtype=bool)
        top = [["" for _ in self.tokens] for _ in self.layer_names]
        hover = [["" for _ in self.tokens] for _ in self.layer_names]
        ranks = sorted(int(c[3:-6]) for c in self.lens.columns if c.startswith("top") and c.endswith("_token"))
        for j in range(len(self.tokens)):
            rows = self.lens[self.lens["prompt_index"] == j]
            for i, (_, row) in enumerate(rows.iterrows()):
                prob[i, j] = row["target_prob"] if pd.notna(row["target_prob"]) else 0.0
                top[i][j] = str(row["top1"])
                hits[i, j] = pd.notna(row["target_rank"]) and int(row["target_rank"]) == 1
                listed = [
                    f"{k}. {visible_token(str(row[f'top{k}_token']))} {float(row[f'top{k}_prob']):.3f}" for k in ranks
                ]
                target = ""
                if pd.notna(row["target_rank"]):
                    target = (
                        f"<br>target {visible_token(str(row['target']))}: rank {int(row['target_rank'])}, "
                        f"p {float(row['target_prob']):.3g}"
                    )
                hover[i][j] = "<br>".join(listed) + target
        return prob, top, prompts, hits, hover

    # ----- the run directory --------------------------------------------------------------------------
    def phases_record(self) -> dict | None:
        """``phases.json``: the phases as ranges of layer names (and depths), with the scores behind them."""
        if self.phases is None:
            return None
        names = self.phase_layers
        return {
            "method": "contiguous kernel k-means on the linear CKA matrix over the prompts, k by mean silhouette",
            "layers": "embed = embedding output, k = output of decoder block k; the final norm is not included",
            "silhouette": self.phases.silhouette,
            "phases": [
                {"first": names[a], "last": names[b], "first_depth": a, "last_depth": b} for a, b in self.phases.bounds
            ],
            "summary": self.phases.describe(names),
            "contrast": self.phases.contrast,
            "consecutive_cka": {f"{names[i]}->{names[i + 1]}": v for i, v in enumerate(self.phases.consecutive)},
        }

    def tables(self) -> dict[str, pd.DataFrame]:
        tables = {"logit_lens": self.lens, "similarity": self.similarity}
        if self.comparison is not None:
            tables["compare"] = self.comparison
        return tables

    def arrays(self) -> dict[str, np.ndarray]:
        return {"residuals": self.residuals}

    def figures(self) -> dict:
        figures = {"heatmap": self.figure, "logit_lens": self.lens_figure}
        if self.phases is not None:
            figures["layers"] = self.phases_figure
        return figures

    def images(self) -> dict:
        images = {"heatmap": self.heatmap_png, "logit_lens": self.lens_png}
        if self.phases is not None:
            images["layers"] = self.phases_png
        return images

    def texts(self) -> dict[str, str]:
        record = self.phases_record()
        return {} if record is None else {"phases.json": json.dumps(record, indent=2) + "\n"}

    def record(self) -> dict:
        return {
            "prompts": [
                {
                    "prompt": t.prompt,
                    "ids": t.ids,
                    "position": t.position,
                    "target": t.target_text,
                    "target_id": t.target_id,
                    "token": t.token,
                }
                for t in self.tokens
            ],
            "layers": self.layer_names,
            "phases": self.phases.describe(self.phase_layers) if self.phases is not None else None,
            "findings": self.findings(),
        }

    def findings(self) -> dict[str, str]:
        """One sentence per figure: how the residual grows and which dimension dominates (``heatmap``), where
        the target first becomes the top token (``logit_lens``), the layer phases (``layers``)."""
        from .findings import layer_phrase, number

        found: dict[str, str] = {}
        blocks = [i for i, name in enumerate(self.layer_names) if name != "norm"]
        if len(self.tokens) and len(blocks) > 1:
            values = np.asarray(self.residuals[:, blocks], dtype=np.float64)  # (prompt, layer, d_model)
            rms = np.median(np.sqrt((values**2).mean(axis=2)), axis=0)
            top = np.abs(values).argmax(axis=2).ravel()
            dim, count = np.unique(top, return_counts=True)
            first, last = self.layer_names[blocks[0]], self.layer_names[blocks[-1]]
            over = f" (median over {len(self.tokens)} prompts)" if len(self.tokens) > 1 else ""
            verb = "grows" if rms[-1] >= rms[0] else "falls"
            found["heatmap"] = (
                f"the RMS {verb} from {number(rms[0])} at {layer_phrase(first)} to {number(rms[-1])} at "
                f"{layer_phrase(last)}"
                f"{over}; dimension {int(dim[count.argmax()])} has the largest |value| in {int(count.max())} of "
                f"{len(top)} prompt-layer cells"
            )
        lens = self.lens[self.lens["target_rank"].notna()] if len(self.lens) else self.lens
        with_target = sorted(set(lens["prompt_index"])) if len(lens) else []
        if with_target:
            firsts = {}
            for index, rows in lens.sort_values("depth").groupby("prompt_index"):
                hit = rows[rows["target_rank"].astype(int) == 1]
                if len(hit):
                    firsts[index] = (int(hit["depth"].iloc[0]), str(hit["layer"].iloc[0]))
            n = len(with_target)
            if not firsts:
                found["logit_lens"] = f"the target is not the top token at any layer for any of the {n} prompts"
            else:
                counts: dict[tuple[int, str], int] = {}
                for key in firsts.values():
                    counts[key] = counts.get(key, 0) + 1
                (depth, layer), k = max(counts.items(), key=lambda item: (item[1], -item[0][0]))
                sentence = f"the target first becomes the top token at {layer_phrase(layer)} for {k} of {n} prompts"
                if len(firsts) > k:
                    sentence += f"; {len(firsts)} of {n} reach it at some layer"
                found["logit_lens"] = sentence
        if self.phases is not None:
            found["layers"] = (
                f"phases (linear CKA over the {len(self.tokens)} prompts): {self.phases.describe(self.phase_layers)}"
            )
        return found

    @classmethod
    def from_files(cls, config, tables, arrays, record, run_dir) -> InspectResult:
        """A saved inspect run (see :func:`layerscope.load_run`): ``residuals`` memory-mapped, the phases from
        ``phases.json``, the layer-by-layer matrices computed again from the residuals."""
        tokens = [
            PromptTokens(
                prompt=p["prompt"],
                ids=list(p["ids"]),
                position=int(p["position"]),
                token=p.get("token", ""),
                target_text=p.get("target"),
                target_id=p.get("target_id"),
            )
            for p in record.get("prompts") or []
        ]
        residuals = arrays["residuals"]
        matrices, phases = {}, None
        if len(tokens) >= 3:
            stack = np.asarray(residuals)[:, :-1].transpose(1, 0, 2)  # (layer, prompt, d), embed..n-1
            matrices = {"linear CKA": cka_matrix(stack), "mean cosine": mean_cosine_matrix(stack)}
            try:
                saved = json.loads((run_dir / "phases.json").read_text(encoding="utf-8"))
                phases = Phases(
                    bounds=[(int(p["first_depth"]), int(p["last_depth"])) for p in saved["phases"]],
                    contrast=float(saved["contrast"]),
                    silhouette=float(saved["silhouette"]),
                    consecutive=[float(v) for v in saved["consecutive_cka"].values()],
                )
            except (OSError, ValueError, KeyError, TypeError):
                phases = find_phases(matrices["linear CKA"], n_phases=config.phases)
        return cls(
            config=config,
            tokens=tokens,
            residuals=residuals,
            layer_names=[str(name) for name in record.get("layers") or []],
            similarity=tables["similarity"],
            lens=tables["logit_lens"],
            phases=phases,
            matrices=matrices,
            comparison=tables.get("compare"),
            **cls.saved(record),
        )

    def summary(self) -> list[str]:
        lines = []
        final = self.lens[self.lens["layer"] == "norm"]
        for _, row in final.iterrows():
            ranked = pd.notna(row["target_rank"])
            target = f", target {row['target']!r} rank {int(row['target_rank'])}" if ranked else ""
            lines.append(f"{row['prompt']!r}: top-1 {row['top1']!r} (p={row['p_top1']:.2f}){target}")
        if self.phases is not None:
            lines.append(f"layer phases: {self.phases.describe(self.phase_layers)}")
        if self.comparison is not None:
            worst = self.comparison.loc[self.comparison["mean_cosine"].idxmin()]
            lines.append(
                f"compared with {self.model_names[-1]}: lowest mean cosine {worst['mean_cosine']:.4f} "
                f"at layer {worst['layer']}"
            )
        return lines


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
    model = config.model.loaded(model, timings)
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
        other = spec.loaded(compare_with, timings)
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
