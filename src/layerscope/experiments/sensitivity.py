"""Which part of a quantized model loses the answer, and the cheapest mixed-precision recipe that gets it back.

Flow: prompts (built-in task prompts or ``--text FILE``; each read at its last token) -> the reference and the
quantized weights in one module (:class:`~layerscope.capture.restoration.RestorationEngine`; the quantized
copy loaded from ``--quantized`` or made on the fly by ``mlx.core.quantize`` at ``--bits``) -> for each block and
tensor kind (``q_proj`` .. ``down_proj``, and the embedding) the part restored to the reference's weights, and for
each block its output restored to the reference's activation -> KL(reference || restored), top-1 agreement and
the share of the quantized model's KL removed -> with ``--budget``, the parts kept at ``--keep-bits`` chosen
greedily by KL removed per extra byte (:mod:`layerscope.analysis.sensitivity`), written as ``recipe.json``
(:mod:`layerscope.convert.recipe`) and measured as a real mixed model, with the KL-vs-size curve of such recipes
against uniform quantization.

Only the weight matrices are parts: MLX keeps norms and biases unquantized (a quantized file stores them in its
dtype, and that rounding stays in every restored model).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..checkpoints.mlx_quant import VALID_BITS
from ..errors import LayerscopeError
from ..model_spec import ModelSpec
from ..runner import execute
from .sensitivity_config import SensitivityConfig, parse_budget  # noqa: F401  (declared in a light module)
from .sensitivity_result import SensitivityResult

__all__ = ["SensitivityConfig", "SensitivityResult", "parse_budget", "run_sensitivity", "sensitivity"]

#: the GGUF type written for MLX bits (the nearest type gguf quantizes to, at or above the bits)
GGUF_TYPES = {2: "Q4_0", 3: "Q4_0", 4: "Q4_0", 5: "Q5_0", 6: "Q8_0", 8: "Q8_0"}


# ----- the quantized copy --------------------------------------------------------------------------------
def quantized_values(config: SensitivityConfig, model, timings: dict) -> tuple[dict, dict]:
    """``({parameter: tensor}, base)``: the quantized copy's values of the parameters that differ from the
    reference's, and its base (``bits``, ``group_size``, ``dtype``; ``bits`` None when it is not MLX)."""
    import torch

    from ..convert.mlx_roundtrip import mlx_roundtrip, model_dtype
    from ..models.loading import given_or_loaded

    if config.quantized is None:
        start = time.perf_counter()
        values = mlx_roundtrip(model, config.bits, config.group_size)
        timings["quantize"] = time.perf_counter() - start
        return values, {"bits": config.bits, "group_size": config.group_size, "dtype": model_dtype(model)}
    other = given_or_loaded(config.quantized, None, timings)
    check_same_model(model, other)
    reference = dict(model.module.named_parameters())
    values = {}
    for name, value in other.module.named_parameters():
        if not torch.equal(value.detach().to(reference[name].dtype), reference[name].detach()):
            values[name] = value.detach().to(reference[name].dtype)
    base = {**mlx_base(other), "dtype": model_dtype(model)}
    del other
    return values, base


def check_same_model(reference, other) -> None:
    """Refuse (one line) a quantized copy of another shape or tokenizer than the reference."""
    ref = {n: tuple(p.shape) for n, p in reference.module.named_parameters()}
    got = {n: tuple(p.shape) for n, p in other.module.named_parameters()}
    if ref.keys() != got.keys():
        missing = sorted(ref.keys() ^ got.keys())[0]
        raise LayerscopeError(
            f"the quantized model {other.name!r} and the reference {reference.name!r} differ in parameters "
            f"({missing!r} is in one only); give a quantized copy of the reference"
        )
    for name, shape in ref.items():
        if got[name] != shape:
            raise LayerscopeError(
                f"{name} is {got[name]} in the quantized model {other.name!r}, {shape} in the reference; give a "
                "quantized copy of the reference"
            )
    if (
        len(reference.tokenizer) != len(other.tokenizer)
        or reference.tokenizer.get_vocab() != other.tokenizer.get_vocab()
    ):
        raise LayerscopeError(
            f"the quantized model {other.name!r} has another tokenizer than the reference {reference.name!r}; "
            "give a quantized copy of the reference"
        )


def mlx_base(other) -> dict:
    """The MLX base of a loaded quantized model (from its ``config.json``), else ``bits`` None."""
    from ..checkpoints.mlx_quant import parse_quantization

    path = Path(other.source)
    config_path = path / "config.json"
    if path.is_dir() and config_path.is_file():
        try:
            quant = parse_quantization(json.loads(config_path.read_text(encoding="utf-8")))
        except (LayerscopeError, ValueError, OSError):
            quant = None
        if quant is not None and quant.default is not None:
            spec = quant.default
            return {"bits": spec.bits, "group_size": spec.group_size}
    return {"bits": None, "group_size": None}


# ----- the run ---------------------------------------------------------------------------------------------
def run_sensitivity(config: SensitivityConfig, model=None) -> SensitivityResult:
    """Restore every part and (``activations``) every block's output; with ``budget``, choose and measure the
    recipe; no files written."""
    from .. import progress
    from ..capture.restoration import RestorationEngine
    from ..models import require_lm_head
    from ..models.loading import given_or_loaded
    from ..rundir import model_record

    timings: dict[str, float] = {}
    model = given_or_loaded(config.model, model, timings)
    require_lm_head(model, "sensitivity")
    texts = config.prompts()
    ids = [model.encode(t) for t in texts]
    values, base = quantized_values(config, model, timings)
    if not values:
        raise LayerscopeError("the quantized model's weights equal the reference's; nothing to restore")
    params = dict(model.module.named_parameters())
    uniform_bytes, quantized_bytes, n_weights = _sizes(model, base, params)
    budget_bytes = None
    if config.budget is not None:
        if base["bits"] is None:
            raise config.error(
                "budget", config.budget, "needs the quantized model's MLX bits; give an MLX directory or --bits"
            )
        if config.keep_bits <= base["bits"]:
            raise config.error("keep_bits", config.keep_bits, f"is not above the base's {base['bits']} bits")
        budget_bytes = _budget_bytes(config, base, quantized_bytes, n_weights, model)
    start = time.perf_counter()
    with RestorationEngine(model, values, ids, config.batch_size) as engine:
        quantized = engine.quantized_scores
        total = float(quantized.kl.mean())
        rows = []
        for part in progress.track(engine.parts, "Restoring parts", total=len(engine.parts)):
            scores = engine.restore(part)
            rows.append(_row(part, scores, total, config.seed, params, base, config.keep_bits))
        parts = pd.DataFrame(rows)
        parts["block"] = pd.array(list(parts["block"]), dtype="Int64")
        timings["parts"] = time.perf_counter() - start
        activations = pd.DataFrame()
        if config.activations:
            start = time.perf_counter()
            blocks = list(range(-1, model.n_layers))
            outputs = [engine.restore_output(k) for k in progress.track(blocks, "Restoring block outputs")]
            weights = [engine.restore_block(k) for k in progress.track(blocks, "Restoring block weights")]
            activations = block_views(blocks, outputs, weights, total, config.seed)
            timings["activations"] = time.perf_counter() - start
        curve, recipe_rows = pd.DataFrame(), pd.DataFrame()
        recipe = None
        prompts = pd.DataFrame(
            {"prompt": texts, "n_tokens": [len(i) for i in ids], "quantized_kl": quantized.kl,
             "quantized_agrees": quantized.agrees}
        )  # fmt: skip
        if budget_bytes is not None:
            start = time.perf_counter()
            curve, recipe_rows, recipe_scores = _recipe_and_curve(
                config, engine, model, parts, values, base, budget_bytes, uniform_bytes, quantized, params
            )
            timings["recipe"] = time.perf_counter() - start
            prompts["recipe_kl"] = recipe_scores.kl
            prompts["recipe_agrees"] = recipe_scores.agrees
            recipe = _recipe(config, model, base, recipe_rows, parts, recipe_scores, quantized, budget_bytes)
    return SensitivityResult(
        config=config,
        parts=parts,
        activations=activations,
        curve=curve,
        chosen=recipe_rows,
        prompts=prompts,
        recipe=recipe,
        numbers={
            "n_prompts": len(texts),
            "base_bits": base["bits"],
            "group_size": base["group_size"],
            "keep_bits": config.keep_bits,
            "uniform_bytes": uniform_bytes,
            "budget_bytes": budget_bytes,
            **_interval("quantized_kl", quantized.kl, config.seed),
            "quantized_top1_agreement": float(quantized.agrees.mean()),
        },
        models=[model_record(model)],
        timings=timings,
    )


def block_views(blocks: list[int], outputs: list, weights: list, total: float, seed: int) -> pd.DataFrame:
    """The activation view, one row per block of ``blocks`` (``-1``: the embedding): the scores with the block's
    output restored from the reference run (``outputs``; ``kl`` .. ``top1_agreement``) and with its weights
    restored, every part of the block at once (``weights``; ``weights_kl`` .. ``weights_top1_agreement``)."""
    return pd.DataFrame(
        {
            "layer": ["embed" if k < 0 else str(k) for k in blocks],
            "depth": [k + 1 for k in blocks],
            **_columns(outputs, total, seed),
            **{f"weights_{key}": values for key, values in _columns(weights, total, seed).items()},
        }
    )


def _interval(name: str, kl: np.ndarray, seed: int) -> dict:
    from ..analysis.sensitivity import mean_interval

    mean, low, high = mean_interval(kl, seed)
    return {name: mean, f"{name}_low": low, f"{name}_high": high}


def _columns(found: list, total: float, seed: int) -> dict:
    from ..analysis.sensitivity import mean_interval

    stats = [mean_interval(s.kl, seed) for s in found]
    return {
        "kl": [s[0] for s in stats],
        "kl_low": [s[1] for s in stats],
        "kl_high": [s[2] for s in stats],
        "kl_removed": [total - s[0] for s in stats],
        "share_removed": [(total - s[0]) / total if total > 0 else float("nan") for s in stats],
        "top1_agreement": [float(s.agrees.mean()) for s in found],
    }


def _row(part, scores, total: float, seed: int, params: dict, base: dict, keep_bits: int) -> dict:
    from ..analysis.sensitivity import mean_interval
    from ..convert.mlx_roundtrip import mlx_bytes

    mean, low, high = mean_interval(scores.kl, seed)
    n = sum(params[name].numel() for name in part.names)
    extra = 0
    if base["bits"] is not None:
        for name in part.names:
            shape = tuple(params[name].shape)
            extra += mlx_bytes(shape, keep_bits, base["group_size"], base["dtype"])
            extra -= mlx_bytes(shape, base["bits"], base["group_size"], base["dtype"])
    return {
        "block": pd.NA if part.block is None else part.block,
        "kind": part.kind,
        "part": part.label,
        "module": part.names[0].removesuffix(".weight"),
        "parameters": n,
        "extra_bytes": extra,
        "kl": mean,
        "kl_low": low,
        "kl_high": high,
        "kl_removed": total - mean,
        "share_removed": (total - mean) / total if total > 0 else float("nan"),
        "top1_agreement": float(scores.agrees.mean()),
    }


def _sizes(model, base: dict, params: dict) -> tuple[int, int, int]:
    """``(uniform bytes, bytes of the quantized matrices, their number of weights)`` of the model quantized at
    the base: matrices at ``bits`` with scales and biases, the other tensors in the file's dtype."""
    from ..convert.mlx_roundtrip import DTYPE_BYTES, mlx_bytes
    from ..convert.mlx_write import quantizes

    if base["bits"] is None:
        return 0, 0, 0
    total = matrices = weights = 0
    for name, p in params.items():
        if quantizes(name, tuple(p.shape), base["group_size"]):
            size = mlx_bytes(tuple(p.shape), base["bits"], base["group_size"], base["dtype"])
            matrices += size
            weights += p.numel()
            total += size
        else:
            total += p.numel() * DTYPE_BYTES[base["dtype"]]
    return total, matrices, weights


def _budget_bytes(config, base: dict, matrix_bytes: int, n_weights: int, model) -> float:
    kind, value = parse_budget(config.budget)
    uniform, _, _ = _sizes(model, base, dict(model.module.named_parameters()))
    budget = uniform * value / 100 if kind == "percent" else value * n_weights / 8 - matrix_bytes
    reference = sum(p.numel() * p.element_size() for p in model.module.parameters())
    if budget < 0:
        raise config.error("budget", config.budget, f"is below the base's {base['bits']} bits; give more")
    if budget > reference:
        raise config.error(
            "budget", config.budget, f"is above the reference's own size ({reference / 1e6:,.1f} MB); give less"
        )
    return float(budget)


def _recipe_and_curve(config, engine, model, parts, values, base, budget, uniform_bytes, quantized, params):
    """The recipe's parts (measured as a mixed model at ``keep_bits``) and the KL-vs-size curve: recipes at a few
    budgets against uniform quantization at every MLX bits from the base's up."""
    from ..analysis.sensitivity import greedy_order, mean_interval
    from ..convert.mlx_roundtrip import mlx_roundtrip, mlx_weight

    removed = parts["kl_removed"].to_numpy(dtype=float)
    extra = parts["extra_bytes"].to_numpy(dtype=float)
    bits, group, dtype = base["bits"], base["group_size"], base["dtype"]
    reference = engine.reference_values  # the module holds the quantized values while the engine runs

    def mixed(chosen: list[int]):
        names = [n for i in chosen for n in engine.parts[i].names]
        kept = {n: mlx_weight(reference[n], config.keep_bits, group, dtype) for n in names}
        return engine.with_weights(kept) if kept else engine.quantized_scores

    points = []
    uniform_sizes = {}
    for b in [b for b in VALID_BITS if b >= bits]:
        names = list(values)
        scores = (
            engine.quantized_scores
            if b == bits
            else engine.with_weights(mlx_roundtrip(model, b, group, dtype, names=names, tensors=reference))
        )
        size = _sizes(model, {**base, "bits": b}, params)[0]
        uniform_sizes[b] = size
        points.append(("uniform", f"{b}-bit", size, scores))
    sizes = sorted(
        {budget * f for f in (0.25, 0.5, 1.0)} | {s - uniform_bytes for b, s in uniform_sizes.items() if b > bits}
    )
    recipe_scores = None
    chosen_at_budget: list[int] = []
    for s in sizes:
        chosen = greedy_order(removed, extra, s)
        scores = mixed(chosen)
        points.append(("recipe", f"+{s / uniform_bytes:.1%}", uniform_bytes + float(extra[chosen].sum()), scores))
        if s == budget:
            recipe_scores, chosen_at_budget = scores, chosen
    curve = pd.DataFrame(
        {
            "method": [p[0] for p in points],
            "label": [p[1] for p in points],
            "bytes": [int(p[2]) for p in points],
            "relative_size": [p[2] / uniform_bytes for p in points],
            **{
                k: v
                for k, v in zip(
                    ("kl", "kl_low", "kl_high"), np.array([mean_interval(p[3].kl, config.seed) for p in points]).T
                )
            },
            "top1_agreement": [float(p[3].agrees.mean()) for p in points],
        }
    )
    cumulative = np.cumsum(extra[chosen_at_budget]) if chosen_at_budget else np.array([])
    rows = parts.iloc[chosen_at_budget][
        ["part", "module", "block", "kind", "extra_bytes", "kl_removed", "share_removed"]
    ]
    rows = rows.reset_index(drop=True)
    rows.insert(0, "order", range(1, len(rows) + 1))
    rows["cumulative_bytes"] = cumulative.astype(int) if len(cumulative) else []
    return curve, rows, recipe_scores


def _recipe(config, model, base, chosen: pd.DataFrame, parts, scores, quantized, budget):
    """The :class:`~layerscope.convert.recipe.Recipe` of the chosen parts, its notes the measured numbers."""
    from ..convert.recipe import Recipe, TensorOverride

    keep_type = GGUF_TYPES[config.keep_bits]
    arch = gguf_arch(model)
    total = float(quantized.kl.mean())
    notes = {
        "source": "layerscope sensitivity",
        "n_prompts": len(scores.kl),
        "budget": config.budget,
        "budget_bytes": int(budget),
        "extra_bytes": int(chosen["extra_bytes"].sum()) if len(chosen) else 0,
        "uniform_kl": total,
        "recipe_kl": float(scores.kl.mean()),
        "share_removed": (total - float(scores.kl.mean())) / total if total > 0 else None,
        "uniform_top1_agreement": float(quantized.agrees.mean()),
        "recipe_top1_agreement": float(scores.agrees.mean()),
    }
    if arch is not None:
        notes["gguf_arch"] = arch
    overrides = tuple(TensorOverride(m, config.keep_bits, keep_type) for m in chosen["module"])
    return Recipe(base["bits"], base["group_size"], GGUF_TYPES[base["bits"]], overrides, notes)


def gguf_arch(model) -> str | None:
    """The GGUF architecture name of a model (``gemma3_text`` -> ``gemma3``), None when gguf knows none."""
    import gguf

    known = set(gguf.MODEL_ARCH_NAMES.values())
    model_type = str(getattr(model.config, "model_type", ""))
    for name in (model_type, model_type.removesuffix("_text")):
        if name in known:
            return name
    return None


def sensitivity(
    model=None,
    *,
    quantized=None,
    bits: int = 4,
    group_size: int = 64,
    task: str | tuple[str, ...] = (),
    text: str | os.PathLike | None = None,
    n: int = 40,
    shots: int | None = None,
    budget: str | None = None,
    keep_bits: int = 8,
    activations: bool = True,
    seed: int = 0,
    batch_size: int = 16,
    out: str | os.PathLike | None = None,
    force: bool = False,
):
    """Which block and tensor kind of a quantized model loses the next token, and (``budget``) a mixed-precision
    recipe that gets it back.

    Args:
        model: the reference (a loaded model, a source, or None for the default model).
        quantized: its quantized copy (a source or :class:`ModelSpec`); None: ``mlx.core.quantize`` at ``bits``.
        task, n, shots: built-in task prompts (default every task, ``n`` each); or ``text``, a prompts file.
        budget: ``"5%"`` or ``"4.5bpw"``: the recipe's extra size; ``keep_bits``: the bits of what it keeps.
        out: also write the run directory (with ``recipe.json``).

    Example:
        >>> result = layerscope.sensitivity(bits=4, budget="5%", out="runs/sens")
        >>> result.parts.nlargest(5, "share_removed")[["part", "share_removed", "extra_bytes"]]
        >>> print(result.recipe_text())
    """
    from ..models import Model

    config = SensitivityConfig(
        model=ModelSpec.of(model),
        quantized=None if quantized is None else ModelSpec.of(quantized),
        bits=bits,
        group_size=group_size,
        task=(task,) if isinstance(task, str) else tuple(task),
        text=None if text is None else os.fspath(text),
        n=n,
        shots=shots,
        budget=budget,
        keep_bits=keep_bits,
        activations=activations,
        seed=seed,
        batch_size=batch_size,
    )
    return execute(config, model if isinstance(model, Model) else None, out=out, force=force)
