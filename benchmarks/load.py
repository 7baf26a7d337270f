"""Cold vs warm load of the default model (Gemma 3 270M GGUF).

Cold: an empty cache, so transformers' GGUF loader dequantizes every tensor and layerscope writes the
safetensors + tokenizer cache entry. Warm: the same call again, reading the cache entry.
Target: warm at least 10x faster than cold.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/load.py [--warm-repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from ratios import print_ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="layerscope-bench-cache-") as cache:
        os.environ["LAYERSCOPE_CACHE"] = cache
        import layerscope
        from layerscope import progress

        progress.set_enabled(False)
        start = time.perf_counter()
        model = layerscope.load_model()
        cold = time.perf_counter() - start
        del model
        warm_times = []
        for _ in range(args.warm_repeats):
            start = time.perf_counter()
            model = layerscope.load_model()
            warm_times.append(time.perf_counter() - start)
            del model
    warm = min(warm_times)
    print(f"cold load (dequantize + cache): {cold:6.1f} s")
    print(f"warm load (from cache, best of {args.warm_repeats}): {warm:6.2f} s")
    print_ratio("load: cold (dequantize + cache) / warm (from cache)", [cold], [warm], at_least=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
