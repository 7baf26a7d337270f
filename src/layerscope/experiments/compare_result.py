"""What ``compare`` found (:class:`CompareResult`): its tables, figures, record and findings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from ..analysis.pair_cka import PairCKA
from ..analysis.residual_error import ERROR_COLUMNS, growth_block
from ..experiment import Result
from ..render.compare import (
    AgreementTable,
    cka_figure,
    cka_png,
    errors_figure,
    errors_png,
)
from .findings import layer_phrase, number, percent

if TYPE_CHECKING:
    from .compare import CompareConfig


@dataclass(kw_only=True, repr=False)
class CompareResult(Result):
    """What ``compare`` found.

    Attributes:
        pairs: one :class:`~layerscope.analysis.pair_cka.PairCKA` per pair of models (every layer of A against every layer of B).
        cka: long table, one row per (pair, layer of A, layer of B): ``model_a, model_b, layer_a, depth_a,
            layer_b, depth_b, cka, debiased_cka``.
        best_match: per pair and layer of A: its best-matching layer of B by linear and by debiased CKA.
        summary_table: per pair: ``aligned_cka`` (mean CKA along the relative-depth diagonal),
            ``mean_best_cka`` (mean best-match CKA), their debiased forms, and whether the tokenizations agree.
        tokens: per model and input: its text, number of tokens and the token read.
        errors: per model and layer against the reference: ``relative_error``, ``cosine``, ... (empty when no
            model is comparable position by position).
        agreement: per model against the reference: top-1 agreement, mean/max KL (prompts only), relative
            error at the last block, the block where the error grows most, the mean weight error.
        predictions: per model and prompt: top-1 token, its probability, agreement and KL.
        weights: per model and tensor: the weight error against the reference's checkpoint.
        residuals: model name -> the captured ``(layer, item, d_model)`` (kept in memory, not written).
        reference: the reference's display name; ``skipped``: model -> why it was not measured against it.
    """

    config: CompareConfig
    pairs: list[PairCKA]
    tokens: pd.DataFrame
    errors: pd.DataFrame
    agreement: pd.DataFrame
    predictions: pd.DataFrame
    weights: pd.DataFrame
    reference: str
    skipped: dict[str, str]
    residuals: dict[str, np.ndarray]

    main_file: ClassVar[str] = "cka.html"

    # ----- tables ------------------------------------------------------------------------------------
    @property
    def cka(self) -> pd.DataFrame:
        frames = []
        for pair in self.pairs:
            la, lb = len(pair.layers_a), len(pair.layers_b)
            frames.append(
                pd.DataFrame(
                    {
                        "model_a": pair.a,
                        "model_b": pair.b,
                        "layer_a": np.repeat(pair.layers_a, lb),
                        "relative_depth_a": np.repeat(pair.relative_a, lb),
                        "layer_b": np.tile(pair.layers_b, la),
                        "relative_depth_b": np.tile(pair.relative_b, la),
                        "cka": pair.linear.ravel(),
                        "debiased_cka": pair.debiased.ravel(),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    @property
    def best_match(self) -> pd.DataFrame:
        rows = []
        for pair in self.pairs:
            best, best_d = pair.best(), pair.best(debiased=True)
            for i, layer in enumerate(pair.layers_a):
                j, k = best[i], best_d[i]
                rows.append(
                    {
                        "model_a": pair.a,
                        "model_b": pair.b,
                        "layer_a": layer,
                        "best_layer_b": None if j is None else pair.layers_b[j],
                        "cka": float("nan") if j is None else float(pair.linear[i, j]),
                        "best_layer_b_debiased": None if k is None else pair.layers_b[k],
                        "debiased_cka": float("nan") if k is None else float(pair.debiased[i, k]),
                    }
                )
        return pd.DataFrame(rows)

    @property
    def summary_table(self) -> pd.DataFrame:
        rows = []
        for pair in self.pairs:
            rows.append(
                {
                    "model_a": pair.a,
                    "model_b": pair.b,
                    "n_inputs": self.n_inputs,
                    "aligned_cka": pair.aligned(),
                    "mean_best_cka": pair.mean_best(),
                    "aligned_debiased_cka": pair.aligned(debiased=True),
                    "mean_best_debiased_cka": pair.mean_best(debiased=True),
                }
            )
        return pd.DataFrame(rows)

    def tables(self) -> dict[str, pd.DataFrame]:
        tables = {"pairs": self.summary_table, "cka": self.cka, "best_match": self.best_match, "tokens": self.tokens}
        for stem in ("errors", "agreement", "predictions", "weights"):
            frame = getattr(self, stem)
            if len(frame):
                tables[stem] = frame
        return tables

    def main_table(self) -> pd.DataFrame:
        return self.agreement if len(self.agreement) else self.summary_table

    # ----- figures ---------------------------------------------------------------------------------
    def figure(self):
        """CKA heatmaps, one pair at a time (a selector with several pairs): linear and debiased side by side,
        each layer of A's best match in B marked."""
        return cka_figure(self.pairs, title=f"linear CKA layer by layer over {self.n_inputs} {self.input_kind}")

    def cka_png(self):
        return cka_png(self.pairs, title=f"linear CKA layer by layer over {self.n_inputs} {self.input_kind}")

    def errors_figure(self):
        """Relative error and cosine against the reference, layer by layer, one line per model."""
        return errors_figure(self.errors, title=f"against {self.reference}, at the read positions")

    def errors_png(self):
        return errors_png(self.errors, title=f"against {self.reference}, at the read positions")

    def agreement_table(self):
        """The agreement table's one description (:class:`~layerscope.render.compare.AgreementTable`): next-token
        agreement, KL, residual and weight error per model."""
        return AgreementTable.of(self.agreement, title=f"against {self.reference}")

    def agreement_figure(self):
        """The agreement table, interactive."""
        return self.agreement_table().plotly()

    def agreement_png(self):
        return self.agreement_table().png()

    def figures(self) -> dict:
        figures = {"cka": self.figure}
        if len(self.errors):
            figures["errors"] = self.errors_figure
        if len(self.agreement):
            figures["agreement"] = self.agreement_figure
        return figures

    def images(self) -> dict:
        images = {"cka": self.cka_png}
        if len(self.errors):
            images["errors"] = self.errors_png
        if len(self.agreement):
            images["agreement"] = self.agreement_png
        return images

    @property
    def n_inputs(self) -> int:
        names = self.tokens["model"].unique() if len(self.tokens) else []
        return int(len(self.tokens) // len(names)) if len(names) else 0

    @property
    def input_kind(self) -> str:
        return "prompts" if self.config.uses_prompts else "words"

    # ----- records ---------------------------------------------------------------------------------
    def agreement_record(self) -> dict:
        out = {}
        for _, row in self.agreement.iterrows():
            out[str(row["model"])] = {
                key: (None if pd.isna(row[key]) else row[key].item() if hasattr(row[key], "item") else row[key])
                for key in self.agreement.columns
                if key not in ("model", "reference")
            }
        return out

    def record(self) -> dict:
        pairs = {
            f"{row['model_a']} vs {row['model_b']}": {
                "aligned_cka": _finite(row["aligned_cka"]),
                "mean_best_cka": _finite(row["mean_best_cka"]),
                "aligned_debiased_cka": _finite(row["aligned_debiased_cka"]),
                "mean_best_debiased_cka": _finite(row["mean_best_debiased_cka"]),
                "read_positions": pair.n_items,
                "width": pair.width,
            }
            for (_, row), pair in zip(self.summary_table.iterrows(), self.pairs, strict=True)
        }
        return {
            "inputs": f"{self.n_inputs} {self.input_kind}",
            "reference": self.reference,
            "pairs": pairs,
            "agreement": self.agreement_record(),
            "not_compared_to_reference": self.skipped,
            "findings": self.findings(),
        }

    def findings(self) -> dict[str, str]:
        """One sentence per figure, read from the numbers."""
        found = {}
        said = []
        for pair in self.pairs[:3]:
            best = pair.best()
            text = (
                f"{pair.a} vs {pair.b}: aligned CKA (along relative depth) {pair.aligned():.3f}, debiased "
                f"{pair.aligned(debiased=True):.3f}; mean best-match CKA {pair.mean_best():.3f}"
            )
            if pair.width and pair.n_items:
                text += (
                    f"; over {pair.n_items} read positions at width {pair.width}, unrelated representations "
                    f"give about {pair.chance:.2f}"
                )
            middle = len(pair.layers_a) // 2
            if not pair.sure:  # too few positions for the width: no layer-to-layer claim
                text += (
                    f", too close to tell layers apart: best matches need at least {pair.width or 'width'} "
                    "positions (one per dimension)"
                )
            elif best[middle] is not None:  # where A's middle block finds its match: a concrete correspondence
                text += (
                    f"; {layer_phrase(pair.layers_a[middle])} of {pair.a} matches "
                    f"{layer_phrase(pair.layers_b[best[middle]])} of {pair.b} best (CKA "
                    f"{pair.linear[middle, best[middle]]:.3f})"
                )
            said.append(text)
        if said:
            more = f" (and {len(self.pairs) - 3} more pairs)" if len(self.pairs) > 3 else ""
            found["cka"] = "; ".join(said) + more
        if len(self.errors):
            parts = []
            for model, rows in self.errors.groupby("model", sort=False):
                grows = growth_block(rows.reset_index(drop=True))
                blocks = rows[rows["layer"].str.fullmatch(r"\d+")]
                last = blocks.iloc[-1] if len(blocks) else rows.iloc[-1]
                text = (
                    f"{model}: relative error {number(float(last['relative_error']))} at {layer_phrase(last['layer'])}"
                )
                if grows is not None:
                    text += f", growing most at {layer_phrase(grows[0])} (+{number(grows[1])})"
                parts.append(text)
            order = self.closer_everywhere()
            if order:
                parts.append(f"{order[0]} is closer than {order[1]} at every layer")
            found["errors"] = f"against {self.reference}: " + "; ".join(parts)
        if len(self.agreement) and "top1_agreement" in self.agreement:
            parts = []
            for _, row in self.agreement.iterrows():
                if pd.notna(row.get("top1_agreement")):
                    parts.append(
                        f"{row['model']}: top-1 agreement {percent(float(row['top1_agreement']))}, mean KL "
                        f"{number(float(row['mean_kl']))} nats"
                    )
            if parts:
                found["agreement"] = f"next token against {self.reference} over {self.n_inputs} prompts: " + "; ".join(
                    parts
                )
        return found

    def closer_everywhere(self) -> tuple[str, str] | None:
        """``(a, b)`` when, of the two models measured against the reference, ``a``'s relative error is below
        ``b``'s at every layer where the reference has spread (None otherwise, or with other than two)."""
        models = list(dict.fromkeys(self.errors["model"])) if len(self.errors) else []
        if len(models) != 2:
            return None
        a, b = (self.errors[self.errors["model"] == m]["relative_error"].to_numpy() for m in models)
        if np.all(a < b):
            return models[0], models[1]
        if np.all(b < a):
            return models[1], models[0]
        return None

    def summary(self) -> list[str]:
        lines = []
        for pair in self.pairs:
            lines.append(
                f"{pair.a} vs {pair.b}: aligned CKA {pair.aligned():.3f}, mean best-match {pair.mean_best():.3f} "
                f"(debiased {pair.aligned(debiased=True):.3f} / {pair.mean_best(debiased=True):.3f})"
            )
        for _, row in self.agreement.iterrows():
            text = f"{row['model']} against {self.reference}: max relative error {row['max_relative_error']:.4g}"
            if pd.notna(row.get("grows_most_at")):
                text += f" (grows most at block {row['grows_most_at']})"
            if pd.notna(row.get("top1_agreement")):
                text += f", top-1 agreement {row['top1_agreement']:.3f}, mean KL {row['mean_kl']:.3g}"
            lines.append(text)
        for model, why in self.skipped.items():
            lines.append(f"{model}: not measured against {self.reference} ({why})")
        return lines

    @classmethod
    def from_files(cls, config, tables, arrays, record, run_dir) -> CompareResult:
        """A saved compare run (see :func:`layerscope.load_run`); the CKA matrices come back from ``cka.csv``."""
        pairs = []
        cka = tables["cka"]
        for (a, b), rows in cka.groupby(["model_a", "model_b"], sort=False):
            layers_a = list(dict.fromkeys(map(str, rows["layer_a"])))
            layers_b = list(dict.fromkeys(map(str, rows["layer_b"])))
            shape = (len(layers_a), len(layers_b))
            saved = (record.get("pairs") or {}).get(f"{a} vs {b}") or {}
            pairs.append(
                PairCKA(
                    a=str(a),
                    b=str(b),
                    layers_a=layers_a,
                    layers_b=layers_b,
                    linear=rows["cka"].to_numpy(dtype=np.float64).reshape(shape),
                    debiased=rows["debiased_cka"].to_numpy(dtype=np.float64).reshape(shape),
                    relative_a=list(rows["relative_depth_a"].to_numpy(dtype=np.float64)[:: len(layers_b)]),
                    relative_b=list(rows["relative_depth_b"].to_numpy(dtype=np.float64)[: len(layers_b)]),
                    n_items=int(saved.get("read_positions") or 0),
                    width=int(saved.get("width") or 0),
                )
            )
        empty = pd.DataFrame()
        return cls(
            config=config,
            pairs=pairs,
            tokens=tables["tokens"],
            errors=tables.get("errors", pd.DataFrame(columns=["model", "reference", *ERROR_COLUMNS])),
            agreement=tables.get("agreement", empty),
            predictions=tables.get("predictions", empty),
            weights=tables.get("weights", empty),
            reference=str(record.get("reference", "")),
            skipped=dict(record.get("not_compared_to_reference") or {}),
            residuals={},
            **cls.saved(record),
        )


def _finite(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
