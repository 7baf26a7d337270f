"""Offload: a full-layer capture on the default model with the whole model in memory vs most blocks on disk.

Each run is a fresh subprocess (``--child``): it imports everything and loads the tokenizer first (Gemma's
262k-token tokenizer alone takes about 330 MB; it is the same in both runs), then resets the peak resident
memory (``/proc/self/clear_refs``), loads the model (``ModelSpec(max_memory=..., offload_dir=...)``: accelerate
keeps what fits in ``--max-memory`` on the CPU and offloads the other blocks to disk), and captures the residual
stream of every layer (``embed``, each block, ``norm``) at every position of ``--n`` prompts. It reports the
peak resident memory above that baseline (``VmHWM``: anonymous and file-backed pages together), the peak of
each kind sampled every 5 ms, the load and capture times, and where accelerate put the blocks. The parent
prints both runs and their ratios.

Usage:
    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/offload.py                       # cpu=700MiB
    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/offload.py --max-memory cpu=800MiB --n 64
    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/offload.py --child --max-memory cpu=700MiB  # one run, JSON
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from ratios import print_ratio

PROMPT = "The capital of France is Paris, the capital of Italy is Rome, and the capital of Spain is"


def _status() -> dict[str, int]:
    values = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                values[key] = int(rest.split()[0]) * 1024
    return values


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def child(args) -> dict:
    """One measured run in this process; returns the numbers as a dict."""
    import resource

    from transformers import AutoTokenizer

    from layerscope import ModelSpec, progress
    from layerscope.capture.engine import capture_residuals
    from layerscope.capture.layer_spec import parse_layers
    from layerscope.capture.prompts import prompts_at
    from layerscope.checkpoints.default import default_model_path
    from layerscope.checkpoints.layout import memory_estimate
    from layerscope.models.gguf_cache import cached_gguf_dir
    from layerscope.models.loading import load_spec

    progress.set_enabled(False)
    # The tokenizer is the same whatever the placement: load it before the baseline and hand it out again.
    tokenizer = AutoTokenizer.from_pretrained(cached_gguf_dir(default_model_path(), args.dtype)[0])
    AutoTokenizer.from_pretrained = classmethod(lambda cls, *a, **k: tokenizer)

    peaks = {"RssAnon": 0, "RssFile": 0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            now = _status()
            for key in peaks:
                peaks[key] = max(peaks[key], now[key])
            time.sleep(0.005)

    offload_dir = tempfile.mkdtemp(prefix="offload.")
    spec = ModelSpec(dtype=args.dtype, max_memory=args.max_memory, offload_dir=offload_dir if args.max_memory else None)
    reset = _reset_peak()
    base = _status()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    model = load_spec(spec)
    load_s = time.perf_counter() - start
    prompts = prompts_at([model.encode(PROMPT)] * args.n, "all")
    seq_len = len(prompts[0].ids)
    start = time.perf_counter()
    captured = capture_residuals(
        model, prompts, parse_layers("all", model.n_layers) + ["norm"], batch_size=args.batch_size
    )
    capture_s = time.perf_counter() - start
    stop.set()
    thread.join()
    end = _status()
    placement = model.device_map or {}
    blocks = [f"model.layers.{i}" for i in range(model.n_layers)]
    estimate = memory_estimate("default", args.dtype, batch=args.batch_size, seq_len=seq_len)
    peak = end["VmHWM"] if reset else max(end["VmHWM"], maxrss_before)
    return {
        "max_memory": args.max_memory,
        "dtype": args.dtype,
        "peak_above_base": peak - base["VmRSS"],
        "peak_anon_above_base": peaks["RssAnon"] - base["RssAnon"],
        "peak_file_above_base": peaks["RssFile"] - base["RssFile"],
        "base": base["VmRSS"],
        "peak_reset": reset,
        "load_s": load_s,
        "capture_s": capture_s,
        "blocks_on_disk": sum(placement.get(b) == "disk" for b in blocks),
        "n_blocks": model.n_layers,
        "captured_shape": list(captured.shape),
        "weights": estimate.weights,
        "buffers": estimate.buffers,
        "offload_dir_files": sum(len(files) for _, _, files in os.walk(offload_dir)),
    }


def run_child(max_memory: str | None, n: int, batch_size: int, dtype: str) -> dict:
    """:func:`child` in a fresh subprocess (its numbers as a dict)."""
    command = [sys.executable, os.path.abspath(__file__), "--child", "--n", str(n), "--batch-size", str(batch_size)]
    command += ["--dtype", dtype, "--max-memory", max_memory or "none"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the measured run failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max-memory", default="cpu=700MiB", help="the offloaded run's --max-memory (cpu=700MiB; 'none': no offload)"
    )
    parser.add_argument("--n", type=int, default=32, help="prompts captured (default 32)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--child", action="store_true", help="one measured run in this process; prints JSON")
    args = parser.parse_args(argv)
    if args.child:
        args.max_memory = None if args.max_memory == "none" else args.max_memory
        print(json.dumps(child(args)))
        return 0

    whole = run_child(None, args.n, args.batch_size, args.dtype)
    offloaded = run_child(args.max_memory, args.n, args.batch_size, args.dtype)
    mib = 2**20
    print(
        f"full-layer capture of {args.n} prompts ({whole['captured_shape'][0]} layers x "
        f"{whole['captured_shape'][1]} positions in all), default model in {args.dtype}: weights "
        f"{whole['weights'] / mib:.0f} MiB, capture buffers {whole['buffers'] / mib:.0f} MiB"
    )
    for label, run in (("whole model in memory", whole), (f"--max-memory {args.max_memory}", offloaded)):
        print(
            f"{label:>28}: {run['blocks_on_disk']:2d}/{run['n_blocks']} blocks on disk, peak memory "
            f"{run['peak_above_base'] / mib:5.0f} MiB above the baseline (anonymous "
            f"{run['peak_anon_above_base'] / mib:.0f}, file-backed {run['peak_file_above_base'] / mib:.0f}), load "
            f"{run['load_s']:.1f} s, capture {run['capture_s']:.2f} s"
        )
    print_ratio(
        "offload: whole-model peak memory / offloaded", [whole["peak_above_base"]], [offloaded["peak_above_base"]]
    )
    print_ratio("offload: offloaded capture time / whole", [offloaded["capture_s"]], [whole["capture_s"]])
    print(
        f"offloaded / whole: peak memory {offloaded['peak_above_base'] / whole['peak_above_base']:.2f}x, "
        f"capture time {offloaded['capture_s'] / whole['capture_s']:.2f}x, load time "
        f"{offloaded['load_s'] / whole['load_s']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
