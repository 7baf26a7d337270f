"""Fuzz every checkpoint header reader with many more hostile inputs than ``make test`` runs.

The properties are those of tests/checkpoints/test_checkpoints_hostile.py (defined in
tests/hostile_files.py): a mutated safetensors file, sharded index, GGUF file or MLX directory must be
refused with ``LayerscopeError`` or listed as the ``safetensors`` / ``gguf`` libraries list it, within a
time and memory bound. Each property runs on ``--examples`` inputs; a failing property is shrunk by
hypothesis to a minimal input, printed, and the run goes on with the next property.

Usage:
    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/fuzz_readers.py --examples 5000
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from hostile_files import PROPERTIES, Stats, run_property  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="inputs per property (default 2000)")
    parser.add_argument("--only", choices=sorted(PROPERTIES), action="append", help="run only these properties")
    parser.add_argument("--seed", type=int, default=None, help="a fixed hypothesis seed, to repeat a run")
    args = parser.parse_args(argv)
    stats, failures = Stats(), []
    for name in args.only or sorted(PROPERTIES):
        start = time.perf_counter()
        try:
            run_property(name, args.examples, stats, seed=args.seed)
            status = "ok"
        except Exception as exc:  # noqa: BLE001 - a failure is reported, the other properties still run
            failures.append(name)
            status = f"FAILED: {type(exc).__name__}"
            traceback.print_exc()
        print(
            f"{name:24s} {stats.tried.get(name, 0):8d} inputs  {time.perf_counter() - start:7.1f} s  {status}",
            flush=True,
        )
    print(
        f"total: {stats.total} inputs tried, {stats.refused} refused with LayerscopeError, {stats.listed} listed "
        f"(agreeing with the reference libraries); {len(failures)} failing properties"
        + (f": {', '.join(failures)}" if failures else "")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
