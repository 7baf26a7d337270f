"""Fuzz the whole load path: mutated model directories and files, end to end through ``load_model``.

A sibling of ``fuzz_readers.py`` (which fuzzes the header readers alone). The bases are real, loadable models
built here: a tiny Hugging Face llama directory (config, tokenizer files, safetensors weights), the same sharded
with an index, an MLX-quantized directory, and a small GGUF llama. Each input is one base mutated in memory
(JSON values in config / tokenizer / index / safetensors headers, bytes, truncation, NaN weights, missing,
replaced or linked files), written to a fresh directory and loaded with ``load_model`` in a worker process
under an address-space limit (``RLIMIT_AS``) and a per-input timeout. A worker serves many inputs.

An input passes when it loads or is refused with ``LayerscopeError`` (one line on the command line). Anything
else is a crash: another exception, a worker killed (memory, signal) or a hang. Crashes are grouped by
exception type and the innermost layerscope frame, and each class is printed with a reproducing input.

Usage:
    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/fuzz_load.py --inputs 20000 --seed 1
    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/fuzz_load.py --replay hf:1234   # one input, in process
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("hf", "hf-sharded", "mlx", "gguf")

# ----- bases ---------------------------------------------------------------------------------------------------


def build_bases(root: Path) -> None:
    """Write the loadable base models under ``root/<kind>`` (once; reused by every worker)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import torch
    from safetensors.torch import load_file
    from tiny_models import build_config, build_tokenizer
    from transformers import AutoModelForCausalLM

    tokenizer = build_tokenizer()
    config = build_config("llama", len(tokenizer))
    config.num_hidden_layers = 2
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    for kind, shard in (("hf", None), ("hf-sharded", "60KB")):
        out = root / kind
        model.save_pretrained(out, **({"max_shard_size": shard} if shard else {}))
        tokenizer.save_pretrained(out)
    from mlx_writer import save_mlx_dir

    source = root / "hf"
    state = load_file(source / "model.safetensors")
    specs = {name[: -len(".weight")]: (4, 32) for name in state if name.endswith("proj.weight")}
    save_mlx_dir(
        state,
        json.loads((source / "config.json").read_text()),
        root / "mlx",
        specs,
        copy_from=source,
        quantization={"group_size": 32, "bits": 4},
    )
    (root / "gguf").mkdir()
    _write_gguf(root / "gguf" / "model.gguf", model, tokenizer)


def _write_gguf(path: Path, model, tokenizer) -> None:
    """A llama GGUF with a gpt2-style tokenizer, as transformers' GGUF loader reads it."""
    import gguf

    c = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("fuzz llama")
    writer.add_context_length(c.max_position_embeddings)
    writer.add_embedding_length(c.hidden_size)
    writer.add_block_count(c.num_hidden_layers)
    writer.add_feed_forward_length(c.intermediate_size)
    writer.add_head_count(c.num_attention_heads)
    writer.add_head_count_kv(c.num_key_value_heads)
    writer.add_layer_norm_rms_eps(c.rms_norm_eps)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(c.vocab_size)
    vocab = tokenizer.get_vocab()
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda item: item[1])]
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * len(tokens))
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    writer.add_bos_token_id(2)
    writer.add_eos_token_id(1)
    writer.add_pad_token_id(0)
    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    parts = {
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    for name, tensor in model.state_dict().items():
        target = names.get(name)
        if target is None:
            _, _, i, rest = name.split(".", 3)
            target = f"blk.{i}.{parts[rest.rsplit('.', 1)[0]]}.weight"
        writer.add_tensor(target, tensor.detach().float().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def read_base(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


# ----- mutations -----------------------------------------------------------------------------------------------
HOSTILE_VALUES = [
    0,
    -1,
    1,
    2,
    3,
    7,
    2**31,
    2**32 + 1,
    2**40,
    2**63,
    10**30,
    -(2**63),
    0.5,
    1e308,
    float("nan"),
    float("inf"),
    -float("inf"),
    "",
    "64",
    "x" * 1000,
    "../../etc/passwd",
    "/etc/passwd",
    "\x00",
    None,
    True,
    False,
    [],
    {},
    [1, 2, 3],
    {"a": 1},
    "float32",
    "F32",
    "I64",
    "BOOL",
    "F8_E4M3",
    "llama",
    ["LlamaForCausalLM"],
    ["BertModel"],
    "LlamaForCausalLM",
]


def _nested(depth: int):
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def _paths(value, prefix=(), limit=4000) -> list[tuple]:
    """Every key/index path in a JSON value (up to ``limit``)."""
    out = [prefix]
    stack = [(value, prefix)]
    while stack and len(out) < limit:
        node, path = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            out.append((*path, key))
            if isinstance(child, (dict, list)):
                stack.append((child, (*path, key)))
    return out


def _json_edit(rng: random.Random, value):
    """One hostile edit of a parsed JSON value (in place where possible); returns the new value."""
    paths = _paths(value)
    path = rng.choice(paths[1:] or paths)
    if not path:
        return copy.deepcopy(rng.choice(HOSTILE_VALUES + [_nested(rng.choice([50, 5000]))]))
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    op = rng.random()
    if op < 0.15 and isinstance(parent, dict):
        del parent[key]
    elif op < 0.2 and isinstance(parent, list):
        del parent[key]
    elif op < 0.3:
        parent[key] = _nested(rng.choice([20, 3000, 100000]))
    elif op < 0.4 and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
        parent[key] = parent[key] * rng.choice([-1, 0, 2, 1000, 10**9]) + rng.choice([0, 1, -1])
    elif op < 0.45 and isinstance(parent, dict):
        parent[rng.choice(["auto_map", "quantization_config", "torch_dtype", "rope_scaling", "__metadata__"])] = (
            copy.deepcopy(rng.choice(HOSTILE_VALUES))
        )
    else:  # a copy: a later edit of this input must never reach the shared value (or nest it into itself)
        parent[key] = copy.deepcopy(rng.choice(HOSTILE_VALUES))
    return value


def _dump(value) -> bytes:
    try:
        return json.dumps(value).encode()
    except (RecursionError, ValueError):
        return b"[" * 100000


def mutate_json(rng: random.Random, data: bytes) -> bytes:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return mutate_bytes(rng, data)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        value = _json_edit(rng, value)
    return _dump(value)


def mutate_bytes(rng: random.Random, data: bytes, region: int | None = None) -> bytes:
    blob = bytearray(data)
    end = min(len(blob), region or len(blob))
    op = rng.random()
    if not blob or op < 0.2:
        return bytes(blob[: rng.randrange(len(blob) + 1)])
    if op < 0.5:
        for _ in range(rng.choice([1, 2, 4, 16])):
            blob[rng.randrange(end)] = rng.randrange(256)
    elif op < 0.7:  # a hostile 8-byte integer at a random aligned place (counts, lengths, offsets)
        at = rng.randrange(max(1, end - 8))
        value = rng.choice([0, 1, 2**31, 2**32, 2**40, 2**62, 2**64 - 1, 0xFFFFFFFF, len(blob) * 2])
        blob[at : at + 8] = struct.pack("<Q", value)
    elif op < 0.85:
        at = rng.randrange(len(blob))
        blob[at:at] = bytes(rng.randrange(256) for _ in range(rng.choice([1, 8, 64])))
    else:
        at = rng.randrange(len(blob))
        del blob[at : at + rng.choice([1, 8, 64, 4096])]
    return bytes(blob)


def mutate_safetensors(rng: random.Random, data: bytes) -> bytes:
    if len(data) < 8:
        return mutate_bytes(rng, data)
    (length,) = struct.unpack("<Q", data[:8])
    header, payload = data[8 : 8 + length], data[8 + length :]
    op = rng.random()
    if op < 0.55:
        header = mutate_json(rng, header)
        return struct.pack("<Q", len(header)) + header + payload
    if op < 0.75:  # non-finite or huge weights
        blob = bytearray(payload)
        pattern = rng.choice([b"\x00\x00\xc0\x7f", b"\x00\x00\x80\x7f", b"\xff\xff\x7f\x7f"])
        for _ in range(rng.choice([1, 100, len(blob) // 4])):
            at = rng.randrange(max(1, len(blob) // 4)) * 4
            blob[at : at + 4] = pattern
        return data[: 8 + length] + bytes(blob)
    return mutate_bytes(rng, data, region=8 + length + 64)


def mutate(rng: random.Random, kind: str, files: dict[str, bytes], directory: Path) -> None:
    """Write one mutated copy of the base ``files`` into ``directory``."""
    files = dict(files)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        name = rng.choice(sorted(files))
        op = rng.random()
        if name.endswith(".gguf"):
            region = 64 + 3 * 1024 if op < 0.8 else None  # mostly the header (metadata, tensor infos)
            files[name] = mutate_bytes(rng, files[name], region=region)
        elif op < 0.08:
            del files[name]
        elif op < 0.12:
            files[name] = b""
        elif name.endswith(".safetensors"):
            files[name] = mutate_safetensors(rng, files[name])
        elif name.endswith(".json"):
            files[name] = mutate_json(rng, files[name]) if op < 0.85 else mutate_bytes(rng, files[name])
        else:
            files[name] = mutate_bytes(rng, files[name])
    directory.mkdir(parents=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    if kind != "gguf" and rng.random() < 0.04:  # a special file in place of a regular one
        name = rng.choice(sorted(files) or ["config.json"])
        target = directory / name
        target.unlink(missing_ok=True)
        how = rng.choice(["dir", "link-out", "link-loop", "link-missing"])
        if how == "dir":
            target.mkdir()
        elif how == "link-out":
            target.symlink_to("/etc/hostname")
        elif how == "link-loop":
            target.symlink_to(target.name)
        else:
            target.symlink_to(directory / "missing")


# ----- worker ---------------------------------------------------------------------------------------------------
def _frame(exc: BaseException) -> str:
    """The innermost traceback frame in layerscope (else the innermost frame): ``file:line``."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if "/layerscope/" in f.filename]
    frame = (mine or frames or [None])[-1]
    return "?" if frame is None else f"{Path(frame.filename).name}:{frame.lineno}"


def run_one(kind: str, seed: int, bases: dict, work: Path) -> dict:
    from layerscope.errors import LayerscopeError
    from layerscope.models import load_model

    rng = random.Random(f"{kind}:{seed}")
    directory = work / f"{kind}-{seed}"
    shutil.rmtree(directory, ignore_errors=True)
    mutate(rng, kind, bases[kind], directory)
    source = directory / "model.gguf" if kind == "gguf" else directory
    try:
        model = load_model(str(source))
        outcome = {"outcome": "loaded"}
        del model
    except LayerscopeError as exc:
        text = str(exc)
        outcome = {"outcome": "refused"}
        if "\n" in text:
            outcome = {"outcome": "crash", "error": f"LayerscopeError over several lines: {text[:200]!r}"}
    except (Exception, RecursionError) as exc:  # noqa: BLE001 - a crash is what we look for
        outcome = {
            "outcome": "crash",
            "error": type(exc).__name__,
            "message": str(exc)[:300],
            "where": _frame(exc),
        }
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        cache = Path(os.environ["LAYERSCOPE_CACHE"])
        if kind == "gguf" and cache.is_dir():
            shutil.rmtree(cache, ignore_errors=True)
    return outcome


def worker(bases_dir: Path) -> None:
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    from layerscope import progress

    progress.set_enabled(False)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
    bases = {kind: read_base(bases_dir / kind) for kind in KINDS if (bases_dir / kind).is_dir()}
    work = Path(tempfile.mkdtemp(prefix="fuzz-load-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    os.environ["LAYERSCOPE_CACHE"] = str(work / "cache")
    from layerscope.models import load_model

    for kind in bases:  # load each base once: the libraries' lazy imports must not count against an input's time
        source = bases_dir / kind / "model.gguf" if kind == "gguf" else bases_dir / kind
        load_model(str(source))
    shutil.rmtree(work / "cache", ignore_errors=True)
    out = os.fdopen(os.dup(1), "w")  # replies only: whatever a library prints to fd 1 goes to stderr instead
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    out.write("ready\n")
    out.flush()
    try:
        for line in sys.stdin:
            job = json.loads(line)
            reply = run_one(job["kind"], job["seed"], bases, work)
            reply["rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            out.write(json.dumps(reply) + "\n")
            out.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ----- driver ---------------------------------------------------------------------------------------------------
class Worker:
    def __init__(self, bases_dir: Path, memory_gb: float):
        limit = int(memory_gb * 2**30)

        def limits():
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            os.nice(10)

        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", str(bases_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            preexec_fn=limits,
            env=env,
        )
        self.served = 0
        if not self._readline(900).startswith("ready"):
            raise RuntimeError("the worker did not start")

    def _readline(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline() if ready else "<timeout>"

    def ask(self, job: dict, timeout: float) -> dict:
        try:
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return {"outcome": "crash", "error": "the worker died"}
        deadline = time.monotonic() + timeout
        line = self._readline(timeout)
        while line.strip() and not line.startswith("{"):  # not a reply
            line = self._readline(max(0.0, deadline - time.monotonic()))
        self.served += 1
        if line == "<timeout>":
            return {"outcome": "hang"}
        if not line:
            code = self.proc.wait()
            return {"outcome": "crash", "error": f"the worker died (exit {code})"}
        return json.loads(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def drive(args) -> int:
    bases_dir = Path(args.bases)
    if not (bases_dir / "gguf" / "model.gguf").is_file():
        shutil.rmtree(bases_dir, ignore_errors=True)
        bases_dir.mkdir(parents=True)
        build_bases(bases_dir)
    rng = random.Random(args.seed)
    counts = {"loaded": 0, "refused": 0, "crash": 0, "hang": 0}
    classes: dict[str, dict] = {}
    peak_kb = 0
    start = time.monotonic()
    worker_proc = Worker(bases_dir, args.memory_gb)
    log = open(args.log, "a") if args.log else None
    try:
        for i in range(args.inputs):
            if args.minutes and time.monotonic() - start > args.minutes * 60:
                break
            kind = rng.choice(args.kinds or KINDS)
            seed = rng.randrange(2**40)
            reply = worker_proc.ask({"kind": kind, "seed": seed}, args.timeout)
            outcome = reply["outcome"]
            counts[outcome] += 1
            peak_kb = max(peak_kb, reply.get("rss_kb", 0))
            if outcome in ("crash", "hang"):
                key = f"{outcome}: {reply.get('error', 'no reply within the timeout')} @ {reply.get('where', '?')}"
                key = key if len(key) < 300 else key[:300]
                entry = classes.setdefault(
                    key, {"count": 0, "example": f"{kind}:{seed}", "message": reply.get("message")}
                )
                entry["count"] += 1
                if log:
                    log.write(
                        json.dumps({"key": key, "input": f"{kind}:{seed}", "message": reply.get("message")}) + "\n"
                    )
                    log.flush()
            if outcome == "hang" or "died" in reply.get("error", "") or worker_proc.served >= args.recycle:
                worker_proc.stop()
                worker_proc = Worker(bases_dir, args.memory_gb)
            if (i + 1) % args.every == 0:
                rate = (i + 1) / (time.monotonic() - start)
                print(f"{i + 1} inputs {counts} {rate:.1f}/s peak RSS {peak_kb / 1024:.0f} MB", flush=True)
    finally:
        worker_proc.stop()
        if log:
            log.close()
    total = sum(counts.values())
    print(
        f"total: {total} inputs in {time.monotonic() - start:.0f} s: {counts['loaded']} loaded, "
        f"{counts['refused']} refused with LayerscopeError, {counts['crash']} crashes, {counts['hang']} hangs; "
        f"worker peak RSS {peak_kb / 1024:.0f} MB (address space limited to {args.memory_gb:g} GB)"
    )
    for key, entry in sorted(classes.items(), key=lambda item: -item[1]["count"]):
        print(f"  {entry['count']:6d}  {key}  (e.g. --replay {entry['example']}): {entry['message']!r}")
    print(json.dumps({"summary": {**counts, "total": total, "peak_rss_mb": round(peak_kb / 1024)}}))
    return 1 if classes else 0


def replay(args) -> int:
    """One input in this process, with its traceback."""
    kind, seed = args.replay.split(":")
    bases_dir = Path(args.bases)
    bases = {k: read_base(bases_dir / k) for k in KINDS}
    work = Path(tempfile.mkdtemp(prefix="fuzz-replay-"))
    os.environ.setdefault("LAYERSCOPE_CACHE", str(work / "cache"))
    directory = work / "input"
    mutate(random.Random(f"{kind}:{seed}"), kind, bases[kind], directory)
    print(f"input written to {directory}")
    from layerscope.models import load_model

    load_model(str(directory / "model.gguf" if kind == "gguf" else directory))
    print("loaded")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=2000, help="how many inputs (default 2000)")
    parser.add_argument("--minutes", type=float, default=0, help="stop after this long (0: no limit)")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (inputs are reproducible from it)")
    parser.add_argument("--kinds", choices=KINDS, action="append", help="only these bases")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one input may take (default 60)")
    parser.add_argument("--memory-gb", type=float, default=6.0, help="the worker's address-space limit (default 6)")
    parser.add_argument("--recycle", type=int, default=2000, help="inputs per worker before a fresh one")
    parser.add_argument("--every", type=int, default=500, help="print progress every N inputs")
    parser.add_argument("--bases", default=os.path.join(tempfile.gettempdir(), "layerscope-fuzz-bases"))
    parser.add_argument("--log", default=None, help="append each crash (class, input) to this JSON-lines file")
    parser.add_argument("--replay", default=None, metavar="KIND:SEED", help="run one input here, with its traceback")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(Path(args.worker))
        return 0
    if args.replay:
        return replay(args)
    return drive(args)


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
