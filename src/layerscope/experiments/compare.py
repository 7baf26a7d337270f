"""Compare models and quantizations side by side, layer by layer.

Every model reads the same inputs (the words of token sets in a context, or prompts) and is captured
once, at one position per input: the last token of each word or prompt, the position any two tokenizers
agree on. Only those positions are kept (the capture engine's buffer), at every point of the residual
stream: ``embed``, ``0``..``n-1``, ``norm``.

Across any two models, of any families and tokenizers:

- **linear CKA** between every layer of A and every layer of B over the inputs, and its **debiased** form
  (the unbiased HSIC estimator of Song et al. 2012 in place of the biased one; Kornblith et al. 2019,
  Nguyen et al. 2021), which removes CKA's upward bias when the inputs are few next to the dimensions;
- for each layer of A, the **best-matching layer** of B (highest CKA);
- two summary numbers per pair: ``aligned_cka``, the mean CKA along the relative-depth diagonal (each layer
  of A against the layer of B nearest its relative depth, ``depth / n_blocks``), and ``mean_best_cka``, the
  mean over A's layers of their best match in B. Both are 1 for a model against itself.

Against the reference (the first model by default), for every model with the same depth, width and
tokenization of every input (one model in several formats or precisions):

- per layer, the **relative error** ``||x - r|| / ||r||`` and the **cosine** of the residual at the read
  positions (averaged over inputs), and the block where the relative error grows most;
- on prompts: **next-token top-1 agreement** and **mean KL(reference || other)** (nats) of the model's own
  final logits at the read positions (the final norm's output through the unembedding: no other position's
  logits are computed);
- the **per-tensor weight error** of the two checkpoints, read from the files alone, when both are
  checkpoints of the same architecture.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from ..analysis.cka import cross_cka
from ..analysis.similarity import compare as row_metrics
from ..errors import LayerscopeError, choices_text
from ..experiment import Result, option
from ..model_spec import ModelSpec, specs_argv, unique_name
from ..tokensets.options import TokenSetOptions

#: the fewest inputs compared (debiased CKA needs 4)
MIN_ITEMS = 4
#: read positions whose next-token log-probabilities are computed at once (one pass over the unembedding each)
LOGIT_CHUNK = 64


def read_prompts(path: str) -> list[str]:
    """The non-blank lines of a prompts file (as ``inspect --prompts-file`` reads them)."""
    from .inspect import read_prompts_file

    return read_prompts_file(path)


@dataclass(frozen=True, kw_only=True)
class CompareConfig(TokenSetOptions):
    """What ``layerscope compare`` runs.

    Attributes:
        models: two or more models (``--model``, repeated), loaded one at a time, each freed after its capture.
        sets, tokens, leading_space: the words (see :class:`TokenSetOptions`); with neither words nor prompts,
            ``categories``. The last token of each word is read.
        prompts: prompts instead of words (``--prompt``, repeated); the last token of each is read.
        prompts_file: a text file with one prompt per line, read after ``prompts``.
        context: where a word sits: ``bos`` (alone after BOS), ``nobos``, or a template with ``{word}``.
        bos: put the BOS token before each prompt (``--no-bos`` turns it off).
        reference: the model the others are measured against: a ``NAME`` given as ``--model NAME=SOURCE``, or
            a source as given (``default`` for the default model); None: the first model.
        weights: also compare the checkpoints' tensors when both are checkpoints of one architecture.
        batch_size: inputs per forward pass.
    """

    experiment = "compare"

    models: tuple[ModelSpec, ...] = option((), flag="--model")
    prompts: tuple[str, ...] = option((), flag="--prompt")
    prompts_file: str | None = None
    context: str = "bos"
    bos: bool = option(True, flag="--no-bos")
    reference: str | None = None
    weights: bool = option(True, flag="--no-weights")
    batch_size: int = 32

    # ----- inputs ----------------------------------------------------------------------------------------
    @property
    def uses_prompts(self) -> bool:
        return bool(self.prompts) or self.prompts_file is not None

    def all_prompts(self) -> list[str]:
        prompts = list(self.prompts)
        if self.prompts_file is not None:
            try:
                prompts += read_prompts(self.prompts_file)
            except LayerscopeError as exc:
                raise self.error("prompts_file", self.prompts_file, str(exc)) from None
        return prompts

    def word_sets(self) -> dict[str, list[str]]:
        if not self.sets and not self.tokens:
            return TokenSetOptions.word_sets(dataclasses.replace(self, sets=("categories",)))
        return super().word_sets()

    def n_items(self) -> int:
        if self.uses_prompts:
            return len(self.all_prompts())
        return sum(len(words) for words in self.word_sets().values())

    def reference_index(self) -> int:
        """The position of the reference in ``models`` (0 without ``reference``)."""
        if self.reference is None:
            return 0
        wanted = str(self.reference)
        for index, spec in enumerate(self.models):
            if wanted in (spec.name, spec.value, spec.label):
                return index
        for index, spec in enumerate(self.models):  # a path written another way
            if spec.source and os.path.exists(wanted) and os.path.realpath(wanted) == os.path.realpath(spec.source):
                return index
        valid = list(dict.fromkeys(spec.name or spec.label for spec in self.models))
        raise self.error("reference", self.reference, f"names none of the models; valid: {choices_text(valid)}")

    # ----- checks ------------------------------------------------------------------------------------------
    def validate(self) -> None:
        from ..capture.contexts import context_problem

        super().validate()
        if isinstance(self.models, ModelSpec) or not all(isinstance(m, ModelSpec) for m in self.models):
            raise self.error("models", self.models, "must be a tuple of ModelSpec")
        if len(self.models) < 2:
            raise self.error("models", [m.label for m in self.models], "gives fewer than 2 models; give two or more")
        for spec in self.models:
            try:
                spec.validate()
            except LayerscopeError as exc:
                raise self.error("models", spec.value, f"is not valid: {exc}") from None
        if isinstance(self.prompts, str):
            raise self.error("prompts", self.prompts, "must be a tuple of texts (the Python API accepts one text)")
        if self.prompts_file is not None and not str(self.prompts_file).strip():
            raise self.error("prompts_file", self.prompts_file, "is empty; give a text file with one prompt per line")
        if self.uses_prompts and (self.sets or self.tokens):
            raise self.error(
                "prompts", list(self.prompts) or self.prompts_file,
                "comes with words (--set/--tokens); give words or prompts, not both",
            )  # fmt: skip
        if self.multi_token != "mean":
            raise self.error("multi_token", self.multi_token, "is not used: compare reads the last token of each word")
        if self.uses_prompts:
            for prompt in self.all_prompts():
                if not prompt.strip():
                    raise self.error("prompts", prompt, "is empty; every prompt needs at least one character")
            if self.context != "bos":
                raise self.error("context", self.context, "applies to words; prompts are read as given")
        else:
            problem = context_problem(self.context)
            if problem:
                raise self.error("context", self.context, problem)
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise self.error("batch_size", self.batch_size, "must be at least 1")
        n = self.n_items()
        if n < MIN_ITEMS:
            what = "prompts" if self.uses_prompts else "words"
            raise self.error(
                "prompts" if self.uses_prompts else "sets",
                list(self.prompts) if self.uses_prompts else list(self.sets),
                f"gives {n} {what}; CKA needs at least {MIN_ITEMS}",
            )
        self.reference_index()

    def command(self) -> list[str]:
        """The command line; every model is one ``--model`` (shared options from the first)."""
        argv = super(CompareConfig, dataclasses.replace(self, models=())).command()
        return argv[:2] + specs_argv(self.models) + argv[2:]

    def run(self, model=None) -> CompareResult:
        return run_compare(self, model)


# ----- one model's capture ---------------------------------------------------------------------------------


@dataclass
class Capture:
    """What is kept of one model: the residuals at the read positions and what identifies the inputs.

    Attributes:
        name: the display name.
        residuals: ``(layer, item, d_model)`` float32, layers ``embed, 0..n-1, norm`` (no ``norm`` when the
            model has no final norm).
        layers: the layer names; ``depths`` the integer depths; ``n_blocks`` the number of decoder blocks.
        ids: each input's token ids as fed (to see whether two models tokenize alike).
        read: the token read in each input (text).
    """

    name: str
    residuals: np.ndarray
    layers: list[str]
    depths: list[int]
    n_blocks: int
    ids: list[tuple[int, ...]]
    read: list[str]
    d_model: int

    @property
    def relative_depths(self) -> list[float]:
        return [d / self.n_blocks for d in self.depths]


def capture_prompts(model, config: CompareConfig) -> list:
    """One :class:`~layerscope.capture.CapturePrompt` per input, its one group holding the tokens read."""
    from ..capture import CapturePrompt
    from ..capture.contexts import word_prompts
    from ..tokensets import encode_sets

    if config.uses_prompts:
        out = []
        for prompt in config.all_prompts():
            ids = model.encode(prompt, bos=config.bos)
            if not ids:
                raise LayerscopeError(f"prompt {prompt!r} gives no token in {model.name}")
            out.append(CapturePrompt(tuple(ids), ((len(ids) - 1,),)))
        return out
    items = encode_sets(model.tokenizer, config.word_sets(), leading_space=config.leading_space, warn=False)
    return word_prompts(model, items, config.context)


def capture_model(model, config: CompareConfig, name: str) -> Capture:
    """Capture every layer of ``model`` at the last token of each input (nothing else of a sequence is kept)."""
    from ..capture import FINAL_NORM, capture_residuals, layer_depth, layer_name

    prompts = capture_prompts(model, config)
    points = [*range(model.n_layers + 1), *([FINAL_NORM] if model.final_norm is not None else [])]
    array = capture_residuals(
        model,
        prompts,
        points,
        pool="last",
        batch_size=config.batch_size,
        description=f"Capturing {len(prompts)} inputs in {name}",
    )
    last = [p.ids[p.groups[0][-1]] for p in prompts]
    return Capture(
        name=name,
        residuals=np.asarray(array),
        layers=[layer_name(d) for d in points],
        depths=[layer_depth(d, model.n_layers) for d in points],
        n_blocks=model.n_layers,
        ids=[p.ids for p in prompts],
        read=model.token_strings(last),
        d_model=model.d_model,
    )


# ----- the numbers -----------------------------------------------------------------------------------------


def nearest_layers(source: Sequence[float], target: Sequence[float]) -> list[int]:
    """For each relative depth in ``source``, the index of the nearest one in ``target`` (the first on a tie)."""
    target = np.asarray(target, dtype=np.float64)
    return [int(np.argmin(np.abs(target - s))) for s in source]


@dataclass
class PairCKA:
    """Every layer of ``a`` against every layer of ``b``: ``linear`` and ``debiased`` CKA, ``(La, Lb)``."""

    a: str
    b: str
    layers_a: list[str]
    layers_b: list[str]
    linear: np.ndarray
    debiased: np.ndarray
    relative_a: list[float]
    relative_b: list[float]

    def best(self, debiased: bool = False) -> list[int | None]:
        """For each layer of ``a``, the index of its best-matching layer of ``b`` (None when all are NaN)."""
        matrix = self.debiased if debiased else self.linear
        return [None if np.isnan(row).all() else int(np.nanargmax(row)) for row in matrix]

    def aligned(self, debiased: bool = False) -> float:
        """Mean CKA along the relative-depth diagonal (NaN cells left out)."""
        matrix = self.debiased if debiased else self.linear
        cols = nearest_layers(self.relative_a, self.relative_b)
        return _nanmean([matrix[i, j] for i, j in enumerate(cols)])

    def mean_best(self, debiased: bool = False) -> float:
        """Mean over the layers of ``a`` of the CKA of their best match in ``b``."""
        matrix = self.debiased if debiased else self.linear
        return _nanmean([np.nanmax(row) for row in matrix if not np.isnan(row).all()])


def _nanmean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")


def pair_cka(a: Capture, b: Capture) -> PairCKA:
    """Linear and debiased CKA between every layer of ``a`` and every layer of ``b`` (same inputs)."""
    same = a is b
    return PairCKA(
        a=a.name,
        b=b.name,
        layers_a=a.layers,
        layers_b=b.layers,
        linear=cross_cka(a.residuals, a.residuals if same else b.residuals),
        debiased=cross_cka(a.residuals, a.residuals if same else b.residuals, debiased=True),
        relative_a=a.relative_depths,
        relative_b=b.relative_depths,
    )


ERROR_COLUMNS = ["layer", "depth", "relative_error", "cosine", "min_cosine", "mean_l2", "max_abs_diff"]


def residual_errors(
    reference: np.ndarray, other: np.ndarray, names: Sequence[str], depths: Sequence[int]
) -> pd.DataFrame:
    """Per layer, ``other`` against ``reference``, both ``(item, layer, d)`` over the same inputs.

    Columns: ``layer, depth``, ``relative_error`` (mean over inputs of ``||x - r|| / ||r||``), ``cosine``
    (mean) and ``min_cosine``, ``mean_l2`` (mean ``||x - r||``), ``max_abs_diff`` (over inputs and dimensions).
    """
    rows = []
    for i, (name, depth) in enumerate(zip(names, depths)):
        metrics = row_metrics(reference[:, i], other[:, i])
        norm = np.linalg.norm(np.asarray(reference[:, i], dtype=np.float64), axis=-1)
        relative = metrics["l2"].to_numpy() / np.where(norm > 0, norm, np.nan)
        rows.append(
            {
                "layer": name,
                "depth": depth,
                "relative_error": _nanmean(relative),
                "cosine": float(metrics["cosine"].mean()),
                "min_cosine": float(metrics["cosine"].min()),
                "mean_l2": float(metrics["l2"].mean()),
                "max_abs_diff": float(metrics["max_abs_diff"].max()),
            }
        )
    return pd.DataFrame(rows, columns=ERROR_COLUMNS)


def growth_block(errors: pd.DataFrame) -> tuple[str, float] | None:
    """The block whose output's relative error exceeds its input's by most, and by how much (None: no block
    adds error, e.g. two identical models)."""
    blocks = errors[errors["layer"].str.fullmatch(r"\d+")]
    if blocks.empty:
        return None
    values = errors.set_index("depth")["relative_error"]
    growth = [(float(values[d] - values[d - 1]), str(layer)) for d, layer in zip(blocks["depth"], blocks["layer"])]
    value, layer = max(growth, key=lambda g: np.nan_to_num(g[0], nan=-np.inf))
    return (layer, value) if value > 0 else None


def comparable(reference: Capture, other: Capture) -> str | None:
    """Why ``other`` cannot be measured against ``reference`` position by position, or None when it can."""
    if other.n_blocks != reference.n_blocks:
        return f"{other.n_blocks} blocks, the reference {reference.n_blocks}"
    if other.d_model != reference.d_model:
        return f"width {other.d_model}, the reference {reference.d_model}"
    if other.layers != reference.layers:
        return "other layers than the reference"
    if other.ids != reference.ids:
        return "another tokenization of the inputs"
    return None


def _log_probs(model, capture: Capture, rows: slice):
    """Next-token log-probabilities ``(rows, vocab)`` float32 at the read positions of ``rows`` of a capture:
    the final norm's output through the unembedding (the model's own final logits there)."""
    import torch

    from ..capture.logit_lens import lens_logits

    normed = capture.layers[-1] == "norm"
    with torch.inference_mode():
        logits = lens_logits(model, capture.residuals[-1, rows], normed=normed)
        return torch.log_softmax(logits, dim=-1)


@dataclass
class NextTokens:
    """The reference's next-token log-probabilities at the read positions (only while comparing)."""

    log_probs: object  # torch.Tensor (item, vocab) float32
    top1: np.ndarray


def reference_next_tokens(model, capture: Capture) -> NextTokens:
    import torch

    chunks = [_log_probs(model, capture, slice(i, i + LOGIT_CHUNK)) for i in range(0, len(capture.ids), LOGIT_CHUNK)]
    log_probs = torch.cat(chunks)
    return NextTokens(log_probs=log_probs, top1=log_probs.argmax(dim=-1).cpu().numpy())


def next_token_agreement(model, capture: Capture, reference: NextTokens) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per input: KL(reference || model) in nats, the model's top-1 token id and its probability."""
    import torch

    kl, top1, p_top1 = [], [], []
    for i in range(0, len(capture.ids), LOGIT_CHUNK):
        other = _log_probs(model, capture, slice(i, i + LOGIT_CHUNK))
        ref = reference.log_probs[i : i + LOGIT_CHUNK].to(other.device)
        if other.shape[-1] != ref.shape[-1]:
            raise LayerscopeError(f"vocabularies of {other.shape[-1]} and {ref.shape[-1]} tokens")
        kl.append((torch.exp(ref) * (ref - other)).sum(dim=-1).clamp(min=0).cpu().numpy())
        best = other.max(dim=-1)
        top1.append(best.indices.cpu().numpy())
        p_top1.append(torch.exp(best.values).cpu().numpy())
    return np.concatenate(kl), np.concatenate(top1), np.concatenate(p_top1)


def weight_error_table(reference: tuple[ModelSpec, str, int], other_spec: ModelSpec, other) -> pd.DataFrame | None:
    """Per-tensor weight error of two checkpoints of one architecture, from the files; None when not applicable.

    ``reference``: the reference's spec, model class name and number of blocks (the model itself is freed).
    """
    try:
        from ..checkpoints.weight_error import weight_errors
    except ImportError:
        return None
    spec, module_class, n_layers = reference
    if module_class != type(other.module).__name__ or n_layers != other.n_layers:
        return None
    try:
        return weight_errors(spec, other_spec)
    except LayerscopeError as exc:
        warnings.warn(f"weights of {other_spec.label} not compared with {spec.label}: {exc}", stacklevel=2)
        return None


# ----- the result ------------------------------------------------------------------------------------------


@dataclass(kw_only=True, repr=False)
class CompareResult(Result):
    """What ``compare`` found.

    Attributes:
        pairs: one :class:`PairCKA` per pair of models (every layer of A against every layer of B).
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
        from ..render.compare import cka_figure

        return cka_figure(self.pairs, title=f"linear CKA layer by layer over {self.n_inputs} {self.input_kind}")

    def cka_png(self):
        from ..render.compare import cka_png

        return cka_png(self.pairs, title=f"linear CKA layer by layer over {self.n_inputs} {self.input_kind}")

    def errors_figure(self):
        """Relative error and cosine against the reference, layer by layer, one line per model."""
        from ..render.compare import errors_figure

        return errors_figure(self.errors, title=f"against {self.reference}, at the read positions")

    def errors_png(self):
        from ..render.compare import errors_png

        return errors_png(self.errors, title=f"against {self.reference}, at the read positions")

    def agreement_figure(self):
        """The agreement table: next-token agreement, KL, residual and weight error per model."""
        from ..render.compare import agreement_figure

        return agreement_figure(self.agreement, title=f"against {self.reference}")

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
            }
            for _, row in self.summary_table.iterrows()
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
        from .findings import layer_phrase, number, percent

        found = {}
        said = []
        for pair in self.pairs[:3]:
            best = pair.best()
            # where A's middle block finds its match: a concrete correspondence
            middle = len(pair.layers_a) // 2
            where = ""
            if best[middle] is not None:
                where = (
                    f"; {layer_phrase(pair.layers_a[middle])} of {pair.a} matches "
                    f"{layer_phrase(pair.layers_b[best[middle]])} of {pair.b} best"
                )
            said.append(
                f"{pair.a} vs {pair.b}: mean CKA along relative depth {pair.aligned():.3f}, mean best-match "
                f"{pair.mean_best():.3f} (debiased {pair.aligned(debiased=True):.3f}){where}"
            )
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


# ----- running -----------------------------------------------------------------------------------------------


def _models_given(config: CompareConfig, models) -> list:
    """One loaded model or None (load it) per ``config.models``; a single loaded model is the first one."""
    from ..models import Model

    if models is None:
        return [None] * len(config.models)
    if isinstance(models, Model):
        return [models] + [None] * (len(config.models) - 1)
    models = list(models)
    if len(models) != len(config.models):
        raise LayerscopeError(f"{len(models)} models given for {len(config.models)} model specs; give one per spec")
    return models


def run_compare(config: CompareConfig, models=None) -> CompareResult:
    """Run ``compare``; no files written.

    Args:
        config: what to run.
        models: None loads each of ``config.models`` in turn (each freed after its capture); a loaded model
            (the first of ``config.models``), or a list with one loaded model (or None) per spec.

    The reference is captured first; each other model is measured against it while it is loaded, so only
    the captures (and, on prompts, the reference's next-token log-probabilities) outlive a model.
    """
    from ..rundir import model_record

    given = _models_given(config, models)
    ref_index = config.reference_index()
    order = [ref_index, *[i for i in range(len(config.models)) if i != ref_index]]
    timings: dict[str, float] = {"capture": 0.0, "against_reference": 0.0}
    captures: dict[int, Capture] = {}
    records: dict[int, dict] = {}
    state = _ReferenceState(config)
    for index in order:
        spec = config.models[index]
        model = spec.loaded(given[index], timings)
        name = unique_name(model.name, {c.name for c in captures.values()})
        start = time.perf_counter()
        captures[index] = capture = capture_model(model, config, name)
        timings["capture"] += time.perf_counter() - start
        records[index] = model_record(model, name, layers=capture.layers)
        start = time.perf_counter()
        if index == ref_index:
            state.set_reference(spec, model, capture)
        else:
            state.measure(spec, model, capture)
        timings["against_reference"] += time.perf_counter() - start
        del model
        if given[index] is None:
            gc.collect()  # a model loaded here is freed before the next one loads
    state.next_tokens = None

    start = time.perf_counter()
    ordered = [captures[i] for i in range(len(config.models))]
    pairs = [pair_cka(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1 :]]
    timings["cka"] = time.perf_counter() - start
    return CompareResult(
        config=config,
        pairs=pairs,
        tokens=pd.concat([token_table(config, c) for c in ordered], ignore_index=True),
        errors=(
            pd.concat(state.errors, ignore_index=True)
            if state.errors
            else pd.DataFrame(columns=["model", "reference", *ERROR_COLUMNS])
        ),
        agreement=pd.DataFrame(state.agreement),
        predictions=pd.DataFrame(state.predictions),
        weights=pd.concat(state.weights, ignore_index=True) if state.weights else pd.DataFrame(),
        reference=captures[ref_index].name,
        skipped=state.skipped,
        residuals={c.name: c.residuals for c in ordered},
        models=[records[i] for i in range(len(config.models))],
        timings=timings,
    )


def token_table(config: CompareConfig, capture: Capture) -> pd.DataFrame:
    """Per input of one model: its set, text, number of tokens and the token read."""
    if config.uses_prompts:
        texts = config.all_prompts()
        sets = ["prompts"] * len(texts)
    else:
        words = config.word_sets()
        texts = [w for ws in words.values() for w in ws]
        sets = [s for s, ws in words.items() for _ in ws]
    return pd.DataFrame(
        {
            "model": capture.name,
            "item": range(len(texts)),
            "set": sets,
            "text": texts,
            "n_tokens": [len(ids) for ids in capture.ids],
            "read_token": capture.read,
        }
    )


class _ReferenceState:
    """The reference while the others are measured against it, and the rows gathered."""

    def __init__(self, config: CompareConfig):
        self.config = config
        self.reference: Capture | None = None
        self.reference_info: tuple[ModelSpec, str, int] | None = None
        self.next_tokens: NextTokens | None = None
        self.errors: list[pd.DataFrame] = []
        self.agreement: list[dict] = []
        self.predictions: list[dict] = []
        self.weights: list[pd.DataFrame] = []
        self.skipped: dict[str, str] = {}

    def set_reference(self, spec: ModelSpec, model, capture: Capture) -> None:
        self.reference = capture
        self.reference_info = (spec, type(model.module).__name__, model.n_layers)
        if self.config.uses_prompts and _has_head(model):
            self.next_tokens = reference_next_tokens(model, capture)

    def measure(self, spec: ModelSpec, model, capture: Capture) -> None:
        reference, name = self.reference, capture.name
        why = comparable(reference, capture)
        if why is not None:
            self.skipped[name] = why
            return
        table = residual_errors(
            reference.residuals.transpose(1, 0, 2), capture.residuals.transpose(1, 0, 2), capture.layers, capture.depths
        )
        table.insert(0, "reference", reference.name)
        table.insert(0, "model", name)
        self.errors.append(table)
        row = _agreement_row(name, reference.name, table)
        if self.next_tokens is not None and _has_head(model):
            self._next_token(model, capture, row)
        if self.config.weights:
            tensors = weight_error_table(self.reference_info, spec, model)
            if tensors is not None and len(tensors):
                tensors = tensors.copy()
                tensors.insert(0, "reference", reference.name)
                tensors.insert(0, "model", name)
                self.weights.append(tensors)
                row["weight_relative_error"] = float(tensors["relative_error"].mean())
                row["weight_max_relative_error"] = float(tensors["relative_error"].max())
        self.agreement.append(row)

    def _next_token(self, model, capture: Capture, row: dict) -> None:
        reference = self.next_tokens
        try:
            kl, top1, p_top1 = next_token_agreement(model, capture, reference)
        except LayerscopeError as exc:
            self.skipped[capture.name] = f"next token not compared: {exc}"
            return
        agrees = top1 == reference.top1
        row.update(top1_agreement=float(agrees.mean()), mean_kl=float(kl.mean()), max_kl=float(kl.max()))
        tops = model.token_strings([int(t) for t in top1])
        refs = model.token_strings([int(t) for t in reference.top1])
        for item, text in enumerate(self.config.all_prompts()):
            self.predictions.append(
                {
                    "model": capture.name,
                    "reference": self.reference.name,
                    "item": item,
                    "prompt": text,
                    "reference_top1": refs[item],
                    "top1": tops[item],
                    "p_top1": float(p_top1[item]),
                    "agrees": bool(agrees[item]),
                    "kl": float(kl[item]),
                }
            )


def _has_head(model) -> bool:
    from ..models import require_lm_head

    try:
        require_lm_head(model, "compare")
    except LayerscopeError:
        return False
    return True


def _agreement_row(name: str, reference: str, errors: pd.DataFrame) -> dict:
    grows = growth_block(errors)
    blocks = errors[errors["layer"].str.fullmatch(r"\d+")]
    last = blocks.iloc[-1] if len(blocks) else errors.iloc[-1]
    return {
        "model": name,
        "reference": reference,
        "top1_agreement": float("nan"),
        "mean_kl": float("nan"),
        "max_kl": float("nan"),
        "last_block_relative_error": float(last["relative_error"]),
        "max_relative_error": float(errors["relative_error"].max()),
        "grows_most_at": None if grows is None else grows[0],
        "growth": float("nan") if grows is None else grows[1],
    }


def compare(
    models: Sequence,
    *,
    sets: str | Sequence[str] = (),
    tokens: str | Sequence[str] | None = None,
    prompts: str | Sequence[str] = (),
    prompts_file: str | os.PathLike | None = None,
    context: str = "bos",
    leading_space: bool = False,
    bos: bool = True,
    reference=None,
    weights: bool = True,
    batch_size: int = 32,
    out: str | os.PathLike | None = None,
) -> CompareResult:
    """Compare models (any families) and formats of one model, layer by layer, on the same inputs.

    Args:
        models: two or more: loaded models, sources, :class:`ModelSpec` s, or None for the default model.
        sets, tokens: words (the last token of each is read; default ``categories``); or ``prompts`` /
            ``prompts_file`` (the last token of each prompt; top-1 agreement and KL need prompts).
        context: ``bos``, ``nobos`` or a template with ``{word}`` (words only).
        reference: the model the others are measured against: one of ``models`` (a loaded model, its index,
            its name or its source); None: the first.
        weights: also compare the checkpoints' tensors when both are of one architecture.
        out: also write the run directory there.

    Example:
        >>> result = layerscope.compare([model, "runs/q8", "runs/q4"], prompts=["5+2=", "3+4=", "9-2=", "2*3="])
        >>> result.summary_table            # aligned and best-match CKA per pair
        >>> result.errors                   # relative error and cosine per model and layer
        >>> result.agreement                # top-1 agreement, mean KL, where the error grows most
    """
    from ..models import Model
    from ..tokensets.options import inline_words

    models = list(models)
    specs = tuple(ModelSpec.of(m) for m in models)
    if isinstance(reference, int) and not isinstance(reference, bool):
        if not 0 <= reference < len(specs):
            raise LayerscopeError(f"reference={reference} is not a model index; valid: 0..{len(specs) - 1}")
        reference = specs[reference].value
    elif isinstance(reference, Model):
        index = next((i for i, m in enumerate(models) if m is reference), None)
        if index is None:
            raise LayerscopeError("reference is a loaded model that is not one of models")
        reference = specs[index].value
    elif isinstance(reference, str):
        for i, m in enumerate(models):  # a loaded model's name
            if isinstance(m, Model) and m.name == reference and specs[i].name is None:
                reference = specs[i].value
                break
    config = CompareConfig(
        models=specs,
        sets=(sets,) if isinstance(sets, str) else tuple(sets),
        tokens=inline_words(tokens),
        prompts=(prompts,) if isinstance(prompts, str) else tuple(prompts),
        prompts_file=None if prompts_file is None else os.fspath(prompts_file),
        context=context,
        leading_space=leading_space,
        bos=bos,
        reference=reference,
        weights=weights,
        batch_size=batch_size,
    )
    loaded = [m if isinstance(m, Model) else None for m in models]
    from ..runner import execute

    return execute(config, loaded, out=Path(out) if out is not None else None)
