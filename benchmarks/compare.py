"""Benchmark: ``compare`` over two models against the sum of its parts, in one process.

The parts are what compare cannot avoid: one capture of each model at the read positions (the capture
engine, every layer, the last token of each input) and the linear and debiased CKA between every layer of
one and every layer of the other. ``compare`` adds the token bookkeeping, the per-layer errors against the
reference, the tables, and on prompts the next-token log-probabilities at the read positions. Both sides get
the same loaded models (loading is not timed). Repeats are interleaved and the medians compared; the ratio
compare / parts is printed (target: about 1.0).

The two models are the default model (Gemma 3 270M) in float32 and in bfloat16: one model, two formats, so
the reference comparison runs too. Inputs: the words of ``--set`` (default ``categories``) or, with
``--prompts N``, N arithmetic prompts (which adds the next-token agreement).

Usage:
    HF_HUB_OFFLINE=1 python benchmarks/compare.py --repeats 3
    HF_HUB_OFFLINE=1 python benchmarks/compare.py --prompts 64 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from ratios import print_ratio

import layerscope
from layerscope.analysis.cka import cross_cka
from layerscope.capture import FINAL_NORM, capture_residuals
from layerscope.capture.read_positions import capture_prompts
from layerscope.experiments.compare import CompareConfig, run_compare
from layerscope.model_spec import ModelSpec


def parts(config: CompareConfig, models) -> float:
    """Two captures and the two CKA matrices: the least compare can do."""
    start = time.perf_counter()
    captured = []
    for model in models:
        points = [*range(model.n_layers + 1), FINAL_NORM]
        prompts = capture_prompts(model, config)
        captured.append(capture_residuals(model, prompts, points, pool="last", batch_size=config.batch_size))
    cross_cka(captured[0], captured[1])
    cross_cka(captured[0], captured[1], debiased=True)
    return time.perf_counter() - start


def whole(config: CompareConfig, models) -> float:
    start = time.perf_counter()
    run_compare(config, list(models))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="categories", help="the words (default categories)")
    parser.add_argument("--prompts", type=int, default=0, help="N arithmetic prompts instead of words")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    layerscope.progress.set_enabled(False)

    models = (layerscope.load_model(), layerscope.load_model(dtype="bfloat16"))
    specs = (ModelSpec(), ModelSpec(dtype="bfloat16"))
    if args.prompts:
        prompts = tuple(f"{a}+{b}=" for a in range(10) for b in range(10))[: args.prompts]
        config = CompareConfig(models=specs, prompts=prompts, weights=False)
    else:
        config = CompareConfig(models=specs, sets=(args.set,), weights=False)
    config.validate()
    n = config.n_items()
    print(f"{n} {'prompts' if args.prompts else 'words'}, {models[0].name} float32 vs bfloat16")

    whole(config, models)  # warm up both paths once
    parts(config, models)
    times = {"compare": [], "parts": []}
    for repeat in range(args.repeats):
        order = ("compare", "parts") if repeat % 2 == 0 else ("parts", "compare")
        for name in order:
            times[name].append((whole if name == "compare" else parts)(config, models))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:8s} median {value:.3f} s  ({', '.join(f'{v:.3f}' for v in times[name])})")
    print_ratio("compare: compare / (two captures + CKA)", times["compare"], times["parts"])
    result = run_compare(config, list(models))
    print("\n".join(result.summary()))
    np.testing.assert_equal(len(result.pairs), 1)


if __name__ == "__main__":
    main()
