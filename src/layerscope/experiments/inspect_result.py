"""What ``layerscope inspect`` found, and how it is shown: the result (tables, figures, findings) of one run.

The experiment itself (its config and the run) is :mod:`layerscope.experiments.inspect`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from ..analysis.cka import cka_matrix, degenerate_layers, mean_cosine_matrix
from ..analysis.phases import Phases, find_phases
from ..errors import LayerscopeError
from ..experiment import Result
from ..model_spec import unique_name
from ..render.heatmap import MAX_PANELS, ResidualFigure, ResidualPanel, visible_token
from ..render.lens import LensFigure
from ..render.matrix_figure import MatrixFigure
from ..run_files import RunFiles
from .findings import layer_phrase, number

if TYPE_CHECKING:
    from .inspect import InspectConfig

#: the most the (prompt x prompt) Gram matrices of a loaded run (one per layer) or its (layer x layer) matrices may
#: take (bytes): a record that lists a million layers is refused, not computed
_MATRIX_BYTES = 1 << 30


@dataclass(frozen=True)
class PromptTokens:
    """One prompt as fed: ids, the position read (and its token), and the target token (if any)."""

    prompt: str
    ids: list[int]
    position: int
    token: str
    target_text: str | None
    target_id: int | None


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

    def residual_heatmap(self, max_panels: int | None = None):
        """The residual heatmaps as one :class:`~layerscope.render.heatmap.ResidualFigure`, from which the HTML
        and the PNG are drawn: up to ``max_panels`` prompts (default
        :data:`~layerscope.render.heatmap.MAX_PANELS`) side by side on one colour scale."""
        panels = self._panels()
        return ResidualFigure(
            panels,
            self.layer_names,
            self._zmax(panels),
            self.heatmap_title(),
            value_label=self._value_label(),
            max_panels=max_panels or MAX_PANELS,
            html_name=self.main_file,
        )

    def figure(self, max_panels: int | None = None):
        """Heatmaps of the residual at the position, every layer, with each layer's raw mean and RMS in a
        narrow strip. Up to ``max_panels`` prompts side by side on one colour scale; more: one prompt at a time,
        chosen from a dropdown."""
        return self.residual_heatmap(max_panels).plotly()

    def heatmap_png(self, max_panels: int | None = None):
        """:meth:`figure` as a matplotlib figure (the same description): the first ``max_panels`` prompts, a
        caption counting the rest."""
        return self.residual_heatmap(max_panels).png()

    def lens_heatmap(self):
        """The logit lens as one :class:`~layerscope.render.lens.LensFigure`: probability of each prompt's target
        per layer, top-1 token as text, cells whose top-1 is the target outlined."""
        prob, top, prompts, hits, hover = self._lens_grid()
        title = f"{self.model_name}: logit lens (colour: p(target); outlined: top-1 is the target)"
        return LensFigure(title, prob, top, prompts, self.layer_names, hits=hits, hover=hover)

    def lens_figure(self):
        """Logit lens: probability of each prompt's target per layer, top-1 token as text."""
        return self.lens_heatmap().plotly()

    def lens_png(self):
        """:meth:`lens_figure` as a matplotlib figure (the same description)."""
        return self.lens_heatmap().png()

    def phases_matrices(self):
        """The layer-by-layer linear CKA and mean cosine matrices with the phase boundaries, as one
        :class:`~layerscope.render.matrix_figure.MatrixFigure`. CKA is undefined for a layer whose vectors are
        all alike across the prompts (the embedding of prompts that end with one token): its row and column are
        NaN (gray), not the 0 that :func:`~layerscope.analysis.cka.cka_matrix` stores by convention."""
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
        layer_names = [str(name) for name in record.get("layers") or []]
        if np.ndim(residuals) != 3 or np.shape(residuals)[:2] != (len(tokens), len(layer_names)):
            raise LayerscopeError(
                f"{str(run_dir / 'residuals.npy')!r} has shape {np.shape(residuals)}; run.json lists "
                f"{len(tokens)} prompts and {len(layer_names)} layers (prompt, layer, d_model)"
            )
        if max(len(tokens) ** 2 * len(layer_names), len(layer_names) ** 2) * 8 > _MATRIX_BYTES:
            raise LayerscopeError(
                f"{str(run_dir / 'run.json')!r} lists {len(tokens)} prompts and {len(layer_names)} layers: their "
                f"layer-by-layer matrices would need more than {_MATRIX_BYTES >> 30} GiB to compute again"
            )
        matrices, phases = {}, None
        if len(tokens) >= 3:
            stack = np.asarray(residuals)[:, :-1].transpose(1, 0, 2)  # (layer, prompt, d), embed..n-1
            matrices = {"linear CKA": cka_matrix(stack), "mean cosine": mean_cosine_matrix(stack)}
            try:
                saved = RunFiles(run_dir).json("phases.json")
                phases = Phases(
                    bounds=[(int(p["first_depth"]), int(p["last_depth"])) for p in saved["phases"]],
                    contrast=float(saved["contrast"]),
                    silhouette=float(saved["silhouette"]),
                    consecutive=[float(v) for v in saved["consecutive_cka"].values()],
                )
            except (ValueError, KeyError, TypeError, AttributeError):  # LayerscopeError included: found again
                phases = find_phases(matrices["linear CKA"], n_phases=config.phases)
        return cls(
            config=config,
            tokens=tokens,
            residuals=residuals,
            layer_names=layer_names,
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
