"""Load: a capture over 100,000 words on the default model, streamed to disk under a small memory budget.

Every word goes through the model in the context ``<bos>word`` (its last position pooled as ``mean``), the
residual stream of the chosen layers is written into a memory-mapped ``.npy`` as batches finish (the memory
budget is far below the result's size), and the run directory is saved. It prints the wall time, words per
second, the result's size, and the peak resident memory in three parts, sampled every 20 ms from
``/proc/self/status``: anonymous (the process's own memory: what must stay bounded), file-backed (pages of
the memory-mapped result and the model file that the kernel may drop at any time), and their sum.

Usage:
    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/capture_load.py                 # 100,000 words
    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/capture_load.py --n 10000 --layers all
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]  # 70 syllables: 70**3 = 343,000 words


def make_words(n: int) -> list[str]:
    """``n`` distinct made-up words (``baba``, ``babe``, ...): deterministic, no file needed."""
    words = ("".join(parts) for k in (2, 3) for parts in itertools.product(SYLLABLES, repeat=k))
    return list(itertools.islice(words, n))


class PeakMemory:
    """Peak RssAnon, RssFile and VmRSS of this process while the block runs, sampled in a thread (bytes)."""

    FIELDS = ("RssAnon", "RssFile", "VmRSS")

    def __enter__(self):
        self.peak = dict.fromkeys(self.FIELDS, 0)
        self.start = self._read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> dict[str, int]:
        values = {}
        with open("/proc/self/status") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in self.FIELDS:
                    values[key] = int(rest.split()[0]) * 1024
        return values

    def _run(self):
        while not self._stop.is_set():
            for key, value in self._read().items():
                self.peak[key] = max(self.peak[key], value)
            time.sleep(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="number of words (default 100000)")
    parser.add_argument("--layers", default="0,6,12,-1", help="layers kept (default 0,6,12,-1; 'all' for every one)")
    parser.add_argument("--memory-budget", default="8MB", help="the capture goes to disk above this (default 8MB)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", default=None, help="run directory (default: a temporary one, removed at the end)")
    args = parser.parse_args(argv)

    import layerscope
    from layerscope import progress

    progress.set_enabled(sys.stderr.isatty())
    warnings.filterwarnings("ignore", message=".*split into several tokens")  # made-up words: expected
    words = make_words(args.n)
    model = layerscope.load_model()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="capture-load."))
    try:
        with PeakMemory() as memory:
            start = time.perf_counter()
            result = layerscope.residuals(
                sets={"words": words},
                model=model,
                layers=args.layers,
                memory_budget=args.memory_budget,
                batch_size=args.batch_size,
                out=out,
            )
            elapsed = time.perf_counter() - start
        shape = result.residuals.shape
        on_disk = (out / "residuals.npy").stat().st_size
        streamed = type(result.residuals).__name__
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    mib = 2**20
    print(
        f"words: {len(words)}  layers: {shape[0]}  result: {shape} float32 = {on_disk / mib:.0f} MiB on disk "
        f"({streamed}); memory budget {args.memory_budget}"
    )
    print(f"time: {elapsed:.1f} s ({len(words) / elapsed:.0f} words/s), batch size {args.batch_size}")
    before = memory.start
    print(
        f"peak RSS: anonymous {memory.peak['RssAnon'] / mib:.0f} MiB (at start {before['RssAnon'] / mib:.0f}), "
        f"file-backed {memory.peak['RssFile'] / mib:.0f} MiB (at start {before['RssFile'] / mib:.0f}), "
        f"total {memory.peak['VmRSS'] / mib:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
