"""Fuzz the readers of run directories: mutated run directories through ``load_run`` and the report.

A sibling of ``fuzz_load.py`` (same worker and driver design, its JSON and byte mutations reused). The bases are
real run directories written here by ``tokens``, ``inspect``, ``capture``, ``layers``, ``echo`` and ``stages`` on
tiny models. Each input is one base mutated (``run.json`` values, ``table_dtypes``, integers of thousands of
digits, deep nesting, CSV bytes and cells, ``.npy`` headers that lie about shape or dtype, ``.npz`` members that
declare gigabytes, figure specs that ask for images, maps or CSS from the network, files replaced by FIFOs,
folders, links out of the directory, link loops, hard links to a file outside, names that are not UTF-8),
written to a fresh directory and read in a worker process under an address-space limit and a per-input timeout:
``load_run(dir)``, then the report's ``read_section(dir)`` (and, every ``--page-every`` inputs, the whole page
encoded as UTF-8, as it is written).

An input passes when each reader returns or refuses with a one-line ``LayerscopeError``, and what the report
embeds holds neither the secret of the file outside nor anything that reaches the network. Anything else is a
crash (grouped by exception type and innermost layerscope frame, with a reproducing input); no reply within the
timeout is a hang.

Usage:
    HF_HUB_OFFLINE=1 PYTHONPATH=src nice -n 19 python benchmarks/fuzz_run_dirs.py --inputs 50000 --seed 1
    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/fuzz_run_dirs.py --replay tokens:1234   # one input, here
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import random
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_load import HOSTILE_VALUES, Worker, _frame, mutate_bytes, mutate_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("tokens", "inspect", "capture", "layers", "echo", "stages")
SECRET = "SECRET-OUTSIDE-7f3a"
NETWORK = "evil.example"

# ----- bases ---------------------------------------------------------------------------------------------------


def build_bases(root: Path) -> None:
    """Write one real run directory per kind under ``root/<kind>`` (once; reused by every worker)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import warnings

    warnings.simplefilter("ignore")
    from tiny_embedding import save_tiny_embeddinggemma
    from tiny_models import save_tiny_model

    import layerscope

    llama = str(save_tiny_model("llama", root / "models" / "llama"))
    embedder = str(save_tiny_embeddinggemma(root / "models" / "embedder"))
    layerscope.tokens(["digits"], model=llama, tokens="red,nan,007,True", dims=2, out=root / "tokens")
    layerscope.inspect(["1+1=", "2+2=", "3+3=", "4+4="], model=llama, target="2", out=root / "inspect")
    layerscope.residuals(["red blue", "John"], model=llama, positions="all", layers="embed,-1", out=root / "capture")
    layerscope.layers(["digits"], model=llama, tokens="red,nan", out=root / "layers")
    layerscope.echo(models=[llama], tokens="red,nan,None,007", out=root / "echo")
    layerscope.stages(["a cat", "a dog", "a car"], embedder, dims=3, out=root / "stages")
    (root / "outside").mkdir()
    (root / "outside" / "secret.txt").write_text(SECRET)


def read_base(directory: Path) -> dict[str, bytes]:
    """The base's files (its ``.html`` pages left out: neither reader opens them, and they are megabytes)."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file() and p.suffix != ".html"}


# ----- mutations -----------------------------------------------------------------------------------------------
def _big_int(rng: random.Random) -> str:
    return rng.choice(["9" * 41, "9" * 400, "1" * 4301, "-" + "7" * 5000, "1" + "0" * 20])


def mutate_record(rng: random.Random, data: bytes) -> bytes:
    try:
        record = json.loads(data)
    except (ValueError, RecursionError):
        return mutate_bytes(rng, data)
    if not isinstance(record, dict):
        return mutate_bytes(rng, data)
    op = rng.random()
    if op < 0.25 and isinstance(record.get("table_dtypes"), dict) and record["table_dtypes"]:
        stem = rng.choice(sorted(record["table_dtypes"]))
        columns = record["table_dtypes"][stem]
        if isinstance(columns, dict) and columns:
            column = rng.choice(sorted(columns))
            columns[column] = rng.choice(
                ["bool", "boolean", "int8", "uint8", "int64", "float16", "float32", "Int64", "category",
                 "datetime64[ns]", "complex128", "str", "str/na", "object", "nonsense", "V0", "O"]
            )  # fmt: skip
        else:
            record["table_dtypes"][stem] = copy.deepcopy(rng.choice(HOSTILE_VALUES))  # never a shared object
        return json.dumps(record).encode()
    if op < 0.4:  # a number with far too many digits somewhere (as text: json.dumps cannot write it)
        key = rng.choice(["n_bytes", "weight_bytes", "dims", "chance", "resumed_configs", "x"])
        text = json.dumps(record)
        return text[:-1].encode() + f', "{key}": {_big_int(rng)}}}'.encode()
    if op < 0.5:
        key = rng.choice(["experiment", "config", "files", "table_dtypes", "models", "findings", "timings_s", "layers",
                          "prompts", "stages", "explained_variance_ratio", "created", "command"])  # fmt: skip
        choices = [*HOSTILE_VALUES, [{"bogus": 1}], {"model": {"bogus": 1}}, ["../x.csv", "a\x00.csv"]]
        record[key] = copy.deepcopy(rng.choice(choices))  # a shared value mutated later would nest into itself
        return json.dumps(record).encode()
    return mutate_json(rng, data)


def mutate_csv(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    op = rng.random()
    if op < 0.3 and len(lines) > 2:
        row = rng.randrange(1, len(lines) - 1)
        cells = lines[row].split(b",")
        cells[rng.randrange(len(cells))] = rng.choice(
            [b"399", b"-1", b"1.5", b"1e400", b"", b'"x"', b"True", b"nan", b"9" * 30, b'"unterminated', b"\xff\xfe"]
        )
        lines[row] = b",".join(cells)
        return b"\n".join(lines)
    if op < 0.4:
        return b",".join(b"c%d" % i for i in range(rng.choice([100, 20_000]))) + b"\n" + data
    if op < 0.5:
        return rng.choice([b"", b"\n", b"a\n", b'"', b"\r\n\r\n", b"a,b\n1\n1,2,3\n"])
    return mutate_bytes(rng, data)


def npy_bytes(shape: tuple, descr, payload: bytes, fortran: bool = False, version: tuple = (1, 0)) -> bytes:
    header = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    length = struct.pack("<H", len(header)) if version == (1, 0) else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes(version) + length + header + payload


def mutate_npy(rng: random.Random, data: bytes) -> bytes:
    op = rng.random()
    payload = data[128:] if len(data) > 128 else b""
    if op < 0.5:
        shape = rng.choice([(2_000_000_000,), (10**12, 10**12), (-1, 3), (0,), (3, 0, 5), (len(payload) // 4,),
                            (len(payload) // 4 + 1,), (1, 2, 3, 4, 5, 6, 7), ()])  # fmt: skip
        descr = rng.choice(["<f4", "<f8", "|O", "|V0", "<U3", "|S0", "<i8", "|b1", "<c16", [("a", "<f4")], "x"])
        version = rng.choice([(1, 0), (2, 0), (3, 0), (9, 9)])
        return npy_bytes(shape, descr, payload, rng.random() < 0.2, version)
    return mutate_bytes(rng, data, region=160)


def npz_bytes(rng: random.Random, data: bytes) -> bytes:
    """An archive whose member declares gigabytes, holds a pickle, is not an array, or is corrupt."""
    buffer = io.BytesIO()
    op = rng.random()
    with zipfile.ZipFile(buffer, "w", compression=rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])) as archive:
        if op < 0.4:
            archive.writestr("0.npy", npy_bytes((2_000_000_000,), "<f4", b"\x00" * rng.choice([0, 4096, 1 << 20])))
        elif op < 0.55:
            archive.writestr("0.npy", npy_bytes((3,), "|O", b"\x80\x04N."))
        elif op < 0.7:
            archive.writestr("notes.txt", b"not an array")
        else:
            return mutate_bytes(rng, data)
    return buffer.getvalue()


SPEC_ATTACKS = [
    {"layout": {"images": [{"source": f"http://{NETWORK}/a.png"}]}},
    {"layout": {"images": [{"source": f"//{NETWORK}/a.png"}]}},
    {"layout": {"template": {"layout": {"images": [{"source": f"https://{NETWORK}/t.png"}]}}}},
    {"data": [{"type": "scattergeo", "lon": [1], "lat": [2]}]},
    {"data": [{"type": "choropleth", "geojson": f"https://{NETWORK}/g.json", "locations": ["a"], "z": [1]}]},
    {"data": [{"type": "scattermapbox", "lon": [1], "lat": [2]}], "layout": {"mapbox": {"style": f"http://{NETWORK}"}}},
    {"data": [{"type": "image", "source": f"http://{NETWORK}/i.png"}]},
    {"data": [{"type": "bar", "y": [1], "text": [f'<span style="fill:url(http://{NETWORK}/x.svg#a)">x</span>']}]},
    {"data": [{"type": "bar", "y": [1], "name": f"<b style='background:\\75rl(//{NETWORK})'>n</b>"}]},
    {"frames": [{"layout": {"images": [{"source": f"http://{NETWORK}/f.png"}]}}]},
]


def mutate_spec(rng: random.Random, data: bytes) -> bytes:
    op = rng.random()
    if op < 0.5:
        try:
            spec = json.loads(data)
        except (ValueError, RecursionError):
            spec = {"data": []}
        attack = json.loads(json.dumps(rng.choice(SPEC_ATTACKS)))
        if isinstance(spec, dict):
            for key, value in attack.items():
                if key == "data" and isinstance(spec.get("data"), list):
                    spec["data"] = spec["data"] + value
                elif isinstance(spec.get(key), dict) and isinstance(value, dict):
                    spec[key].update(value)
                else:
                    spec[key] = value
        return json.dumps(spec).encode()
    if op < 0.6:
        return b'{"data": [{"type": "bar", "y": [' + _big_int(rng).encode() + b"]}]}"
    return mutate_json(rng, data)


def mutate(rng: random.Random, files: dict[str, bytes], directory: Path, outside: Path) -> None:
    """Write one mutated copy of the base ``files`` into ``directory``."""
    files = dict(files)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        name = rng.choice(sorted(files))
        op = rng.random()
        if op < 0.05:
            del files[name]
        elif op < 0.08:
            files[name] = b""
        elif name == "run.json":
            files[name] = mutate_record(rng, files[name])
        elif name.endswith(".plotly.json"):
            files[name] = mutate_spec(rng, files[name])
        elif name.endswith(".json"):
            files[name] = mutate_json(rng, files[name])
        elif name.endswith(".csv"):
            files[name] = mutate_csv(rng, files[name])
        elif name.endswith(".npy"):
            files[name] = mutate_npy(rng, files[name])
        elif name.endswith(".npz"):
            files[name] = npz_bytes(rng, files[name])
        else:
            files[name] = mutate_bytes(rng, files[name])
    if rng.random() < 0.3:  # a figure spec of our own: a network attack on a valid figure
        files[f"x{rng.randrange(3)}.plotly.json"] = mutate_spec(rng, b'{"data": [{"type": "bar", "y": [1]}]}')
    directory.mkdir(parents=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    if rng.random() < 0.25:  # a special file in place of a regular one
        name = rng.choice(sorted(files) + ["phases.json", "run.json", "leak.md", "leak.csv", "leak.plotly.json"])
        target = directory / name
        target.unlink(missing_ok=True)
        how = rng.choice(["fifo", "dir", "link-out", "link-loop", "link-missing", "hardlink-out", "link-inside"])
        if how == "fifo":
            os.mkfifo(target)
        elif how == "dir":
            target.mkdir()
        elif how == "link-out":
            target.symlink_to(outside / "secret.txt")
        elif how == "link-loop":
            target.symlink_to(target.name)
        elif how == "link-missing":
            target.symlink_to(directory / "missing")
        elif how == "hardlink-out":
            os.link(outside / "secret.txt", target)
        else:
            target.symlink_to(rng.choice(sorted(files) or ["run.json"]))
    if rng.random() < 0.03:  # a name that is not UTF-8
        (directory / os.fsdecode(b"\xff\xfe.csv")).write_bytes(b"a\n1\n")


# ----- worker ---------------------------------------------------------------------------------------------------
def _check(outcome_of, label: str) -> dict:
    from layerscope.errors import LayerscopeError

    try:
        problem = outcome_of()
        if problem:
            return {"outcome": "crash", "error": problem, "where": label}
        return {"outcome": "read"}
    except LayerscopeError as exc:
        if "\n" in str(exc):
            return {"outcome": "crash", "error": f"LayerscopeError over several lines: {str(exc)[:200]!r}"}
        return {"outcome": "refused"}
    except (Exception, RecursionError) as exc:  # noqa: BLE001 - a crash is what we look for
        return {"outcome": "crash", "error": type(exc).__name__, "message": str(exc)[:300], "where": _frame(exc)}


def run_one(kind: str, seed: int, bases: dict, work: Path, page_every: int) -> dict:
    import layerscope
    from layerscope.experiments.report import ReportConfig, ReportResult
    from layerscope.experiments.report_sections import read_section

    rng = random.Random(f"{kind}:{seed}")
    directory = work / f"{kind}-{seed}"
    shutil.rmtree(directory, ignore_errors=True)
    mutate(rng, bases[kind], directory, work / "outside")

    def loaded():
        layerscope.load_run(directory)

    def reported():
        section = read_section(directory)
        embedded = json.dumps([section.figures, section.texts, section.tables, section.images, section.numbers],
                              default=str)  # fmt: skip
        if SECRET in embedded:
            return "the report embeds a file from outside the run directory"
        if NETWORK in "".join(spec for _, spec in section.figures):
            return "the report embeds a part of a figure that reaches the network"
        if seed % page_every == 0:
            config = ReportConfig(run_dirs=(str(directory),))
            ReportResult(config=config, sections=[section]).html().encode("utf-8")
        return None

    try:
        outcomes = {"load_run": _check(loaded, "load_run"), "report": _check(reported, "report")}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return outcomes


def worker(bases_dir: Path, page_every: int) -> None:
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    bases = {kind: read_base(bases_dir / kind) for kind in KINDS if (bases_dir / kind).is_dir()}
    work = Path(tempfile.mkdtemp(prefix="fuzz-run-dirs-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    shutil.copytree(bases_dir / "outside", work / "outside")
    import layerscope

    for kind in bases:  # the libraries' lazy imports must not count against an input's time
        layerscope.load_run(bases_dir / kind)
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    out.write("ready\n")
    out.flush()
    try:
        for line in sys.stdin:
            job = json.loads(line)
            reply = run_one(job["kind"], job["seed"], bases, work, page_every)
            reply["rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            out.write(json.dumps(reply) + "\n")
            out.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)


class RunDirWorker(Worker):
    """``fuzz_load.Worker`` started on this script."""

    def __init__(self, bases_dir: Path, memory_gb: float, page_every: int):
        import subprocess

        limit = int(memory_gb * 2**30)

        def limits():
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        #: the worker's stderr, kept until the next worker starts: the traceback of a worker that dies
        self.stderr_path = bases_dir / f"worker-{os.getpid()}.stderr"
        with open(self.stderr_path, "w") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--worker", str(bases_dir), "--page-every", str(page_every)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                preexec_fn=limits,
                env=env,
            )
        self.served = 0
        if not self._readline(900).startswith("ready"):
            raise RuntimeError("the worker did not start")

    def stderr_tail(self, size: int = 4000) -> str:
        """The last ``size`` bytes the worker wrote to stderr (its traceback when it died)."""
        with open(self.stderr_path, "rb") as f:
            f.seek(max(f.seek(0, os.SEEK_END) - size, 0))
            return f.read().decode("utf-8", "replace")


# ----- driver ---------------------------------------------------------------------------------------------------
def drive(args) -> int:
    bases_dir = Path(args.bases)
    if not (bases_dir / "outside" / "secret.txt").is_file():
        shutil.rmtree(bases_dir, ignore_errors=True)
        bases_dir.mkdir(parents=True)
        build_bases(bases_dir)
    rng = random.Random(args.seed)
    counts = {target: {"read": 0, "refused": 0, "crash": 0, "hang": 0} for target in ("load_run", "report")}
    classes: dict[str, dict] = {}
    peak_kb, inputs = 0, 0
    start = time.monotonic()
    worker_proc = RunDirWorker(bases_dir, args.memory_gb, args.page_every)
    log = open(args.log, "a") if args.log else None
    try:
        for i in range(args.inputs):
            if args.minutes and time.monotonic() - start > args.minutes * 60:
                break
            kind = rng.choice(args.kinds or KINDS)
            seed = rng.randrange(2**40)
            reply = worker_proc.ask({"kind": kind, "seed": seed}, args.timeout)
            inputs += 1
            if "outcome" in reply:  # the worker hung or died: both readers of this input count it
                reply = {"load_run": reply, "report": reply}
            for target in ("load_run", "report"):
                outcome = reply[target]
                counts[target][outcome["outcome"]] += 1
                if outcome["outcome"] in ("crash", "hang"):
                    key = f"{target} {outcome['outcome']}: {outcome.get('error', 'no reply')} @ {outcome.get('where', '?')}"
                    entry = classes.setdefault(key[:300], {"count": 0, "example": f"{kind}:{seed}",
                                                           "message": outcome.get("message")})  # fmt: skip
                    entry["count"] += 1
                    if log:
                        tail = worker_proc.stderr_tail() if "died" in str(outcome.get("error", "")) else None
                        log.write(json.dumps({"key": key, "input": f"{kind}:{seed}", "stderr": tail}) + "\n")
                        log.flush()
            peak_kb = max(peak_kb, reply.get("rss_kb", 0))
            died = any("died" in str(r.get("error", "")) or r["outcome"] == "hang" for r in (reply["load_run"],))
            if died or worker_proc.served >= args.recycle:
                worker_proc.stop()
                worker_proc = RunDirWorker(bases_dir, args.memory_gb, args.page_every)
            if (i + 1) % args.every == 0:
                rate = (i + 1) / (time.monotonic() - start)
                print(f"{i + 1} inputs {counts} {rate:.1f}/s peak RSS {peak_kb / 1024:.0f} MB", flush=True)
    finally:
        worker_proc.stop()
        if log:
            log.close()
    print(
        f"total: {inputs} inputs in {time.monotonic() - start:.0f} s (address space limited to {args.memory_gb:g} GB)"
    )
    for target, c in counts.items():
        print(f"  {target}: {c['read']} read, {c['refused']} refused with LayerscopeError, {c['crash']} crashes, "
              f"{c['hang']} hangs")  # fmt: skip
    for key, entry in sorted(classes.items(), key=lambda item: -item[1]["count"]):
        print(f"  {entry['count']:6d}  {key}  (e.g. --replay {entry['example']}): {entry['message']!r}")
    print(json.dumps({"summary": {"inputs": inputs, **counts, "peak_rss_mb": round(peak_kb / 1024)}}))
    return 1 if classes else 0


def replay(args) -> int:
    """One input in this process, with its traceback."""
    kind, seed = args.replay.split(":")
    bases_dir = Path(args.bases)
    work = Path(tempfile.mkdtemp(prefix="fuzz-replay-"))
    shutil.copytree(bases_dir / "outside", work / "outside")
    directory = work / "input"
    mutate(random.Random(f"{kind}:{seed}"), read_base(bases_dir / kind), directory, work / "outside")
    print(f"input written to {directory}")
    import layerscope
    from layerscope.experiments.report_sections import read_section

    for name, call in (
        ("load_run", lambda: layerscope.load_run(directory)),
        ("report", lambda: read_section(directory)),
    ):
        try:
            call()
            print(f"{name}: read")
        except layerscope.LayerscopeError as exc:
            print(f"{name}: refused: {exc}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=2000, help="how many inputs (default 2000)")
    parser.add_argument("--minutes", type=float, default=0, help="stop after this long (0: no limit)")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (inputs are reproducible from it)")
    parser.add_argument("--kinds", choices=KINDS, action="append", help="only these bases")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds one input may take (default 30)")
    parser.add_argument("--memory-gb", type=float, default=6.0, help="the worker's address-space limit (default 6)")
    parser.add_argument("--recycle", type=int, default=5000, help="inputs per worker before a fresh one")
    parser.add_argument("--page-every", type=int, default=20, help="render the whole page for 1 input in N")
    parser.add_argument("--every", type=int, default=1000, help="print progress every N inputs")
    parser.add_argument("--bases", default=os.path.join(tempfile.gettempdir(), "layerscope-fuzz-run-dirs"))
    parser.add_argument("--log", default=None, help="append each crash (class, input) to this JSON-lines file")
    parser.add_argument("--replay", default=None, metavar="KIND:SEED", help="run one input here, with its traceback")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(Path(args.worker), args.page_every)
        return 0
    if args.replay:
        return replay(args)
    return drive(args)


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
