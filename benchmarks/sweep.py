"""Benchmark: a 4-model echo sweep, the models one after another (``--no-ray``) vs tasks on a local Ray instance.

Each sweep runs as its own ``layerscope sweep echo`` process into a fresh directory. Measured: wall time of the
whole command (Ray's start-up included) and peak memory, sampled every 50 ms as the sum of the resident
memory of the command's process tree (the driver and, with Ray, its GCS, raylet and workers; shared pages are
counted in every process that maps them). Both sweeps must give the same echo table.

Models: the default model (Gemma 3 270M) and three tiny random ones (tests/tiny_models.py), saved as Hugging Face
checkpoints in a temporary directory.

    PYTHONPATH=src:tests python benchmarks/sweep.py                  # local Ray with every core
    PYTHONPATH=src:tests python benchmarks/sweep.py --num-cpus 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
from ratios import print_ratio  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from tiny_models import save_tiny_model  # noqa: E402


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def timed_sweep(argv: list[str]) -> tuple[float, int]:
    """Run ``layerscope`` with ``argv``; return (seconds, peak resident bytes of its process tree)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
    }
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "layerscope", "--quiet", *argv], env=env)
    watched = psutil.Process(proc.pid)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                peak = max(peak, tree_rss(watched))
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if code != 0:
        raise SystemExit(f"layerscope {' '.join(argv)} exited with {code}")
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray instance")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="layerscope-bench-sweep-") as tmp:
        root = Path(tmp)
        tiny = [str(save_tiny_model(arch, root / arch)) for arch in ("llama", "qwen3", "gemma3")]
        models = [arg for source in ["default", *tiny] for arg in ("--model", source)]
        common = ["sweep", "echo", *models]
        print(
            f"4-model echo sweep (default model + 3 tiny), {os.cpu_count()} cores, local Ray num_cpus={args.num_cpus}"
        )
        rows = {}
        rows["sequential (--no-ray)"] = timed_sweep([*common, "--no-ray", "--out", str(root / "sequential")])
        rows[f"local Ray ({args.num_cpus} CPUs)"] = timed_sweep(
            [*common, "--num-cpus", str(args.num_cpus), "--out", str(root / "ray")]
        )
        for name, (seconds, peak) in rows.items():
            print(f"  {name:24s} {seconds:7.1f} s   peak memory {peak / 2**30:5.2f} GiB")
        (seq_s, seq_peak), (ray_s, ray_peak) = rows.values()
        print(f"  Ray / sequential: time x{ray_s / seq_s:.2f}, peak memory x{ray_peak / seq_peak:.2f}")
        print_ratio("sweep: sequential / local Ray time", [seq_s], [ray_s])
        a = pd.read_csv(root / "sequential" / "echo.csv", dtype=str, keep_default_na=False)
        b = pd.read_csv(root / "ray" / "echo.csv", dtype=str, keep_default_na=False)
        same = list(a["top1"]) == list(b["top1"]) and list(a["rank_echo"]) == list(b["rank_echo"])
        print(f"  same echo table (top-1 and echo rank of every row): {same}")


if __name__ == "__main__":
    main()
