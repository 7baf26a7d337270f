"""Run every timing benchmark against its baseline and print one ratio per line (``make bench``).

The timing benchmarks are the scripts in this folder that print ``ratio ...`` lines through ``ratios.py``;
each runs in its own process (its own warm-up, its own peak-memory count), one after the other, with
``HF_HUB_OFFLINE=1`` and the threads given. The fuzzers (``fuzz_*.py``) and the architecture matrix
(``architectures.py``) are not timing benchmarks and are not run here.

At the end it prints every ratio line again, together, with the script it came from, and the scripts that
failed (exit status and last lines). Its exit status is 1 when a script failed.

Usage:
    make bench                                   # installs the bench extra into .venv-bench, then this
    python benchmarks/run_all.py [--only capture,patch] [--threads 2] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from ratios import PREFIX

HERE = Path(__file__).resolve().parent

#: arguments per script, where its defaults are longer than one run of ``make bench`` needs
ARGUMENTS = {
    "ablate.py": ["--n", "1000"],
    "sensitivity.py": ["--prompts", "8"],  # the naive sweep over 24 prompts outlasts --timeout
}


def timing_scripts() -> list[Path]:
    """The scripts that print ratio lines through ``ratios.py``, in name order."""
    return sorted(
        path
        for path in HERE.glob("*.py")
        if path.name not in ("ratios.py", "run_all.py") and "print_ratio" in path.read_text(encoding="utf-8")
    )


def run_script(path: Path, threads: int, timeout: float) -> tuple[int, list[str], list[str], float]:
    """Run one script; returns (exit status, its ratio lines, its last output lines, seconds)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_NO_ADVISORY_WARNINGS="1")
    env["OMP_NUM_THREADS"] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent / "src"), env.get("PYTHONPATH")]))
    command = [sys.executable, str(path), *ARGUMENTS.get(path.name, [])]
    start = time.perf_counter()
    ratios, tail = [], []
    try:
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=HERE.parent
        ) as process:
            timer = threading.Timer(timeout, process.kill)  # a script that hangs without output is stopped too
            timer.start()
            try:
                for line in process.stdout:
                    line = line.rstrip("\n")
                    print(f"  {line}", flush=True)
                    tail = (tail + [line])[-8:]
                    if line.startswith(PREFIX):
                        ratios.append(line)
                status = process.wait()
            finally:
                timer.cancel()
            if status < 0:
                tail.append(f"stopped after {timeout:.0f} s (--timeout)")
    except OSError as error:
        return 1, [], [str(error)], time.perf_counter() - start
    return status, ratios, tail, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated script names, e.g. capture,patch")
    parser.add_argument("--threads", type=int, default=2, help="OMP threads for every script (default 2)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per script (default 1800)")
    args = parser.parse_args(argv)
    scripts = timing_scripts()
    if args.only:
        wanted = {name.removesuffix(".py") for name in args.only.split(",")}
        unknown = wanted - {path.stem for path in scripts}
        if unknown:
            valid = ", ".join(path.stem for path in scripts)
            print(f"unknown benchmark {', '.join(sorted(unknown))}; valid: {valid}", file=sys.stderr)
            return 2
        scripts = [path for path in scripts if path.stem in wanted]
    collected: list[tuple[str, str]] = []
    failed: list[tuple[str, int, list[str]]] = []
    for path in scripts:
        print(f"== {path.name}", flush=True)
        status, ratios, tail, seconds = run_script(path, args.threads, args.timeout)
        print(f"== {path.name}: exit {status} in {seconds:.0f} s", flush=True)
        collected += [(path.stem, line) for line in ratios]
        if status != 0:
            failed.append((path.name, status, tail))
    print("\nAll ratios:")
    for script, line in collected:
        print(f"{line}   [{script}.py]")
    for name, status, tail in failed:
        print(f"\n{name} failed (exit {status}):\n  " + "\n  ".join(tail))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
