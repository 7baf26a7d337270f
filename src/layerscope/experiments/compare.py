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

This module holds the config, the run and the Python API; the parts live with their kind:
:mod:`layerscope.capture.read_positions` (the capture at the read positions),
:mod:`layerscope.analysis.pair_cka` (CKA of every layer pair), :mod:`layerscope.analysis.residual_error`
(errors and the growth block), :mod:`layerscope.analysis.next_token` (top-1 agreement and KL),
:mod:`layerscope.convert.weight_error` (weights) and :mod:`.compare_result` (what was found).
"""

from __future__ import annotations

import gc
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..analysis.pair_cka import pair_cka
from ..analysis.residual_error import ERROR_COLUMNS, growth_block, residual_errors
from ..capture.next_token import next_token_agreement, reference_next_tokens
from ..capture.read_positions import capture_model, comparable
from ..errors import LayerscopeError
from ..model_spec import ModelSpec, model_list, unique_name
from ..models import Model, require_lm_head
from ..models.loading import given_or_loaded, models_given
from ..rundir import model_record
from ..runner import execute
from ..tokensets.options import inline_words
from .compare_config import MIN_ITEMS, CompareConfig, read_prompts  # noqa: F401  (declared in a light module)
from .compare_result import CompareResult

if TYPE_CHECKING:
    from ..capture.next_token import NextTokens
    from ..capture.read_positions import Capture


def weight_error_table(reference: tuple[ModelSpec, str, int], other_spec: ModelSpec, other) -> pd.DataFrame | None:
    """Per-tensor weight error of two checkpoints of one architecture, from the files; None when not applicable.

    ``reference``: the reference's spec, model class name and number of blocks (the model itself is freed).
    """
    try:
        from ..convert.weight_error import weight_errors
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


# ----- running -----------------------------------------------------------------------------------------------


def run_compare(config: CompareConfig, models=None) -> CompareResult:
    """Run ``compare``; no files written.

    Args:
        config: what to run.
        models: None loads each of ``config.models`` in turn (each freed after its capture); a loaded model
            (the first of ``config.models``), or a list with one loaded model (or None) per spec.

    The reference is captured first; each other model is measured against it while it is loaded, so only
    the captures (and, on prompts, the reference's next-token log-probabilities) outlive a model.
    """

    given = models_given(config.models, models)
    ref_index = config.reference_index()
    order = [ref_index, *[i for i in range(len(config.models)) if i != ref_index]]
    timings: dict[str, float] = {"capture": 0.0, "against_reference": 0.0}
    captures: dict[int, Capture] = {}
    records: dict[int, dict] = {}
    state = _ReferenceState(config)
    for index in order:
        spec = config.models[index]
        model = given_or_loaded(spec, given[index], timings)
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
    unsure = next((pair for pair in pairs if not pair.sure), None)
    if unsure is not None:
        warnings.warn(
            f"CKA over {unsure.n_items} read positions at width {unsure.width}: unrelated representations give "
            f"about {unsure.chance:.2f}, so best matches are not stated; give at least {unsure.width} inputs",
            stacklevel=2,
        )
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
    models: Sequence | None = None,
    *,
    model: Sequence | None = None,
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
        models: two or more: loaded models, sources, :class:`ModelSpec` s, or None for the default model;
            ``model=`` is the same parameter.
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
    models = model_list(models, model)
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

    return execute(config, loaded, out=Path(out) if out is not None else None)
