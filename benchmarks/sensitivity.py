"""The full (block x tensor kind) restoration sweep: layerscope's engine against the naive way, one process, the
numbers checked equal and the ratio printed through ``ratios.py`` (one repeat; ``make bench`` collects it; not a
test).

Naive: for each part, a fresh copy of the quantized model (the reference module with the quantized values put in
by plain torch), the reference's tensors of that part copied back, and a full forward of every prompt alone
(all logits), KL taken from the last position. layerscope: one module, the quantized run's block inputs reused
(only the blocks from the restored one on compute), batched prompts, the output embedding at the read positions
only.

    PYTHONPATH=src python benchmarks/sensitivity.py                 # the default model, MLX 4-bit, 24 prompts
    PYTHONPATH=src python benchmarks/sensitivity.py --model DIR --bits 2 --prompts 8

``--recipe RUN/recipe.json --held-out N``: instead, uniform quantization at the recipe's base against the recipe
(its modules at their bits, by ``mlx.core.quantize``) on N task prompts the run did not see (seed 1, minus the
run's own prompts): mean KL(reference || model) with bootstrap 95% intervals and top-1 agreement.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from ratios import print_ratio

import layerscope
from layerscope.analysis.sensitivity import kl_divergence, mean_interval
from layerscope.capture.restoration import RestorationEngine
from layerscope.convert.mlx_roundtrip import mlx_roundtrip, mlx_weight, model_dtype
from layerscope.convert.recipe import read_recipe
from layerscope.tasks.registry import TASKS, builtin_task

#: the largest KL difference (nats) between the two ways that still counts as the same numbers (float32 rounding
#: of batched, padded prompts against each prompt alone)
SAME_KL = 1e-4


def prompts(n: int) -> list[str]:
    per_task = -(-n // len(TASKS))
    texts = [i.prompt for name in TASKS for i in builtin_task(name).task(per_task, 0, 0).items]
    return texts[:n]


def naive(model, state: dict, values: dict, parts, ids) -> dict[str, np.ndarray]:
    """``{part: (prompt,) KL}`` rebuilding the model for each part and running every prompt whole."""

    def log_probs(module) -> np.ndarray:
        rows = []
        with torch.inference_mode():
            for prompt in ids:
                logits = module(torch.tensor([prompt])).logits[0, -1]
                rows.append(torch.log_softmax(logits.float(), -1).double().numpy())
        return np.stack(rows)

    base = copy.deepcopy(model.module)
    with torch.no_grad():
        params = dict(base.named_parameters())
        for name, value in state.items():
            params[name].data = value.clone()
    ref = log_probs(base)
    out = {}
    for part in parts:
        module = copy.deepcopy(base)
        params = dict(module.named_parameters())
        with torch.no_grad():
            for name, value in values.items():
                params[name].data = value.clone()
            for name in part.names:
                params[name].data = state[name].clone()
        out[part.label] = kl_divergence(ref, log_probs(module))
    return out


def held_out(model, recipe_path: str, n: int) -> None:
    """Uniform vs the recipe on ``n`` task prompts the sensitivity run (beside the recipe) did not read."""
    import pandas as pd

    from layerscope.experiments.sensitivity import SensitivityConfig

    recipe = read_recipe(recipe_path)
    seen = set(pd.read_csv(f"{recipe_path.rsplit('/', 1)[0]}/prompts.csv", keep_default_na=False)["prompt"])
    texts = [t for t in SensitivityConfig(shots=0, n=n, seed=1).prompts() if t not in seen]
    texts = list(dict.fromkeys(texts))
    ids = [model.encode(t) for t in texts]
    values = mlx_roundtrip(model, recipe.bits, recipe.group_size)
    dtype = model_dtype(model)
    with RestorationEngine(model, values, ids, batch_size=64) as engine:
        uniform = engine.quantized_scores
        kept = {
            f"{o.module}.weight": mlx_weight(
                engine.reference_values[f"{o.module}.weight"], o.bits, recipe.group_size, dtype
            )
            for o in recipe.overrides
        }
        mixed = engine.with_weights(kept)
    print(f"{model.name}: {len(texts)} held-out prompts, MLX {recipe.bits}-bit g{recipe.group_size} base")
    for name, scores in (("uniform", uniform), (f"recipe ({len(recipe.overrides)} modules kept)", mixed)):
        mean, low, high = mean_interval(scores.kl)
        print(f"  {name}: mean KL {mean:.4f} nats (95% {low:.4f} to {high:.4f}), top-1 agreement "
              f"{scores.agrees.mean():.3f} ({int(scores.agrees.sum())} of {len(texts)})")  # fmt: skip
    share = 1 - mixed.kl.mean() / uniform.kl.mean()
    draws = np.random.default_rng(0).integers(0, len(texts), size=(1000, len(texts)))
    shares = 1 - mixed.kl[draws].mean(1) / uniform.kl[draws].mean(1)
    low, high = np.quantile(shares, [0.025, 0.975])
    print(f"  the recipe removes {share:.1%} of uniform's KL (95% {low:.1%} to {high:.1%}, paired bootstrap); "
          f"extra bytes {recipe.notes.get('extra_bytes')} of budget {recipe.notes.get('budget_bytes')}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument(
        "--recipe", default=None, help="a sensitivity run's recipe.json: measure it on held-out prompts"
    )
    parser.add_argument("--held-out", type=int, default=29, help="prompts per task for --recipe (default 29)")
    args = parser.parse_args()
    model = layerscope.load_model(args.model)
    if args.recipe is not None:
        held_out(model, args.recipe, args.held_out)
        return
    texts = prompts(args.prompts)
    ids = [model.encode(t) for t in texts]
    values = mlx_roundtrip(model, args.bits, 64)
    state = {n: p.detach().clone() for n, p in model.module.named_parameters()}

    start = time.perf_counter()
    with RestorationEngine(model, values, ids, batch_size=32) as engine:
        fast = {part.label: engine.restore(part).kl for part in engine.parts}
        parts = engine.parts
    fast_s = time.perf_counter() - start

    start = time.perf_counter()
    slow = naive(model, state, values, parts, ids)
    slow_s = time.perf_counter() - start

    worst = max(float(np.abs(fast[k] - slow[k]).max()) for k in fast)
    print(f"{model.name}: {len(parts)} parts x {len(ids)} prompts, MLX {args.bits}-bit")
    print(f"layerscope (shared prefix, batched, read positions only): {fast_s:.1f} s")
    print(f"naive (model rebuilt per part, every prompt whole):       {slow_s:.1f} s")
    print(f"largest KL difference {worst:.2e} nats")
    if worst > SAME_KL:
        raise SystemExit(f"the two ways differ by {worst:.2e} nats (more than {SAME_KL:g}): not the same numbers")
    print_ratio("sensitivity: naive sweep / layerscope", [slow_s], [fast_s])


if __name__ == "__main__":
    main()
