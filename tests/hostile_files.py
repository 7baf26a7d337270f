"""Hostile checkpoint files for the property tests and ``benchmarks/fuzz_readers.py``.

Each property draws one hostile input (a mutated safetensors file, sharded index, GGUF file or MLX
directory) with hypothesis, hands it to a header reader, and checks the reader's promise through
:func:`refused_or_listed`: it either raises :class:`LayerscopeError` or returns a listing that an
independent oracle (the ``safetensors`` / ``gguf`` libraries, or the MLX shape rule) agrees with; never
another exception, never more than ``TIME_LIMIT_S`` seconds (a hang detector) and never more than
``MEMORY_LIMIT`` bytes of Python allocations (tracemalloc peak), whatever sizes the file claims.

Example:
    >>> stats = Stats()
    >>> run_property("gguf_mutations", max_examples=50, stats=stats)
    >>> stats.tried
    50
"""

from __future__ import annotations

import functools
import json
import os
import signal
import struct
import tempfile
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerscope.checkpoints import read_layout
from layerscope.checkpoints.gguf_header import read_gguf_header
from layerscope.checkpoints.mlx_quant import VALID_BITS
from layerscope.checkpoints.safetensors_header import read_safetensors_header
from layerscope.errors import LayerscopeError
from layerscope.user_files import MAX_USER_FILE_BYTES

TIME_LIMIT_S = 10  # far above any honest call (milliseconds): only a hang reaches it
MEMORY_LIMIT = 32 * 2**20  # the files are kilobytes; their headers may claim exabytes
INTERESTING_U64 = [0, 1, 7, 8, 255, 2**31, 2**32 - 1, 2**32, 2**53, 2**62, 2**63 - 1, 2**63, 2**64 - 1]


class Hang(Exception):
    """A reader call ran past ``TIME_LIMIT_S``."""


@dataclass
class Stats:
    """How many inputs each property tried, and how many the readers refused or listed."""

    tried: dict = field(default_factory=dict)
    refused: int = 0
    listed: int = 0

    def count(self, name: str, outcome: str) -> None:
        self.tried[name] = self.tried.get(name, 0) + 1
        if outcome == "refused":
            self.refused += 1
        else:
            self.listed += 1

    @property
    def total(self) -> int:
        return sum(self.tried.values())


_STATS = Stats()


def _alarm(signum, frame):
    raise Hang(f"a reader call ran past {TIME_LIMIT_S} s")


def refused_or_listed(call):
    """``("refused", error)`` or ``("listed", result)``; any other exception, a hang or a memory blow-up raises."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S)
    tracemalloc.start()
    try:
        try:
            result = ("listed", call())
        except LayerscopeError as exc:
            message = str(exc)
            assert message and "\n" not in message, f"error message must be one line: {message!r}"
            result = ("refused", exc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert peak < MEMORY_LIMIT, f"a reader call allocated {peak} bytes for a tiny file"
    return result


# ----- safetensors ---------------------------------------------------------------------------------

_NP_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "U32": np.uint32, "U8": np.uint8, "BOOL": np.bool_}


def _st_tensors(data) -> dict[str, np.ndarray]:
    n = data.draw(st.integers(0, 4), label="n tensors")
    out = {}
    for i in range(n):
        dtype = data.draw(st.sampled_from(sorted(_NP_DTYPES)), label="dtype")
        shape = tuple(data.draw(st.lists(st.integers(0, 5), max_size=3), label="shape"))
        out[f"t{i}.weight"] = np.zeros(shape, dtype=_NP_DTYPES[dtype])
    return out


def _st_blob(tensors: dict[str, np.ndarray], metadata: dict | None = None) -> bytes:
    from safetensors.numpy import save

    return save(tensors, metadata=metadata)


def _split(blob: bytes) -> tuple[dict, bytes]:
    (length,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8 : 8 + length]), blob[8 + length :]


def _join(header: object, data: bytes, length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def _mutate_bytes(data, blob: bytes) -> bytes:
    """Random byte edits: overwrite, insert, delete, truncate, or an interesting u64 written somewhere."""
    blob = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 4), label="n edits")):
        kind = data.draw(st.sampled_from(["set", "insert", "delete", "truncate", "u64"]), label="edit")
        at = data.draw(st.integers(0, max(len(blob), 1)), label="at")
        if kind == "set" and at < len(blob):
            blob[at] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            blob[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del blob[at : at + data.draw(st.integers(1, 8))]
        elif kind == "truncate":
            del blob[at:]
        elif kind == "u64":
            blob[at : at + 8] = struct.pack("<Q", data.draw(st.sampled_from(INTERESTING_U64)))
    return bytes(blob)


def _hostile_header(data, header: dict, payload: bytes) -> bytes:
    """A structurally edited header: lying offsets, shapes and dtypes, bad JSON, absurd lengths."""
    kind = data.draw(
        st.sampled_from(["offsets", "shape", "dtype", "metadata", "length", "json", "deep", "bigint", "type"]),
        label="header edit",
    )
    names = [n for n in header if n != "__metadata__"]
    if kind in ("offsets", "shape", "dtype") and names:
        info = header[data.draw(st.sampled_from(names))]
        junk = st.one_of(st.integers(-3, 2**70), st.text(max_size=3), st.none(), st.booleans(), st.floats())
        if kind == "offsets":
            info["data_offsets"] = data.draw(
                st.one_of(st.lists(st.one_of(st.integers(-2, len(payload) + 2), junk), max_size=3), junk)
            )
        elif kind == "shape":
            info["shape"] = data.draw(st.one_of(st.lists(st.one_of(st.integers(-2, 2**64), junk), max_size=4), junk))
        else:
            info["dtype"] = data.draw(st.one_of(st.sampled_from(["F4", "Q4_K", "f32", "", "I128"]), junk))
    elif kind == "metadata":
        header["__metadata__"] = data.draw(
            st.one_of(
                st.none(),
                st.integers(),
                st.text(max_size=3),
                st.dictionaries(
                    st.text(max_size=3),
                    st.one_of(st.text(max_size=3), st.integers(), st.lists(st.integers(), max_size=2)),
                    max_size=3,
                ),
            )
        )
    elif kind == "length":
        return _join(
            header,
            payload,
            data.draw(
                st.sampled_from(INTERESTING_U64 + [len(json.dumps(header)) + d for d in (-1, 1, len(payload) + 1)])
            ),
        )
    elif kind == "json":
        raw = json.dumps(header).encode()
        return _join(raw[: data.draw(st.integers(0, len(raw)))] + data.draw(st.binary(max_size=4)), payload)
    elif kind == "deep":
        depth = data.draw(st.sampled_from([1, 50, 999, 1001, 100_000]), label="depth")
        return _join(
            b"[" * depth + b"]" * depth if data.draw(st.booleans()) else b'{"a":' * depth + b"1" + b"}" * depth, payload
        )
    elif kind == "bigint":
        return _join(
            b'{"a": {"dtype": "F32", "shape": ['
            + b"9" * data.draw(st.sampled_from([1, 20, 4300, 4301, 20_000]), label="digits")
            + b'], "data_offsets": [0, 0]}}',
            payload,
        )
    else:
        return _join(
            json.dumps(
                data.draw(st.one_of(st.lists(st.integers(), max_size=3), st.text(max_size=4), st.integers(), st.none()))
            ).encode(),
            payload,
        )
    return _join(header, payload)


def _listing(entries) -> dict:
    return {e.name: (tuple(e.shape), e.dtype) for e in entries}


def _library_listing(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        return {k: (tuple(handle.get_slice(k).get_shape()), handle.get_slice(k).get_dtype()) for k in handle.keys()}


def _check_safetensors(path: Path, name: str) -> None:
    outcome, result = refused_or_listed(lambda: read_safetensors_header(path))
    _STATS.count(name, outcome)
    if outcome == "listed":  # accepted: the safetensors library must read the same tensors
        entries, metadata = result
        assert isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
        assert _listing(entries) == _library_listing(path)


def prop_safetensors_mutations(data, tmp: Path) -> None:
    blob = _st_blob(_st_tensors(data), {"format": "np"} if data.draw(st.booleans()) else None)
    path = tmp / "model.safetensors"
    if data.draw(st.booleans(), label="structural"):
        header, payload = _split(blob)
        path.write_bytes(_hostile_header(data, header, payload))
    else:
        path.write_bytes(_mutate_bytes(data, blob))
    _check_safetensors(path, "safetensors_mutations")


# ----- sharded index -------------------------------------------------------------------------------


def prop_sharded_index(data, tmp: Path) -> None:
    from safetensors.numpy import save_file

    root = tmp / "ckpt"
    root.mkdir()
    save_file({"outside": np.zeros(2, np.float32)}, str(tmp / "outside.safetensors"))
    shards = {}
    for i in range(data.draw(st.integers(1, 3), label="n shards")):
        shards[f"s{i}.safetensors"] = [f"layer{i}.{j}.weight" for j in range(data.draw(st.integers(0, 2)))]
        save_file({n: np.zeros(3, np.float16) for n in shards[f"s{i}.safetensors"]}, str(root / f"s{i}.safetensors"))
    weight_map = {n: s for s, names in shards.items() for n in names}
    hostile_shard = st.one_of(
        st.sampled_from(
            [
                "../outside.safetensors",
                str(tmp / "outside.safetensors"),
                "/etc/passwd",
                "sub/../../outside.safetensors",
                "missing.safetensors",
                ".",
                "..",
                "",
                "s0.safetensors/..",
                "a\x00b",
                "x" * 300,
                "~/s0.safetensors",
            ]
        ),
        st.text(max_size=12),
        st.integers(),
        st.none(),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    )
    kind = data.draw(st.sampled_from(["shard", "name", "map", "json", "drop_file"]), label="index edit")
    index: object = {"metadata": {}, "weight_map": weight_map}
    if kind == "shard":
        weight_map[data.draw(st.sampled_from([*weight_map, "extra.weight"]))] = data.draw(hostile_shard)
    elif kind == "name" and weight_map:
        weight_map[data.draw(st.text(max_size=8))] = data.draw(st.sampled_from(sorted(shards)))
    elif kind == "map":
        index = data.draw(
            st.one_of(
                st.just({}),
                st.just({"weight_map": None}),
                st.lists(st.integers(), max_size=2),
                st.fixed_dictionaries(
                    {
                        "weight_map": st.one_of(
                            st.text(max_size=3), st.lists(st.text(max_size=3), max_size=2), st.integers()
                        )
                    }
                ),
            )
        )
    elif kind == "drop_file":
        (root / data.draw(st.sampled_from(sorted(shards)))).unlink()
    raw = json.dumps(index).encode()
    if kind == "json":
        raw = raw[: data.draw(st.integers(0, len(raw)))] + (b"[" * 100_000 if data.draw(st.booleans()) else b"")
    (root / "model.safetensors.index.json").write_bytes(raw)
    outcome, layout = refused_or_listed(lambda: read_layout(root))
    _STATS.count("sharded_index", outcome)
    if outcome == "listed":  # every file read lies inside the directory, and holds what the index says
        for file in layout.files:
            assert (root / file).resolve().parent == root.resolve()
        expected = {}
        for file in layout.files:
            expected.update(_library_listing(root / file))
        assert _listing(layout.entries) == expected


# ----- GGUF ----------------------------------------------------------------------------------------


@functools.cache
def small_gguf(alignment: tuple | None = None) -> bytes:
    """A small valid GGUF file written by ``gguf.GGUFWriter``: scalars, string and int arrays, F32/F16/Q8_0 tensors.

    ``alignment``: ``(adder name, value)`` writes ``general.alignment`` with e.g. ``("add_string", "x")``.
    """
    import gguf
    from gguf.quants import quantize

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "small.gguf"
        writer = gguf.GGUFWriter(str(path), "llama")
        if alignment is not None:
            getattr(writer, alignment[0])("general.alignment", alignment[1])
        writer.add_block_count(1)
        writer.add_token_list([f"t{i}" for i in range(5)])
        writer.add_array("tokenizer.ggml.token_type", [1, 2, 3])
        writer.add_string("general.name", "small")
        writer.add_float32("x.f", 0.5)
        writer.add_bool("x.b", True)
        rng = np.random.default_rng(0)
        writer.add_tensor("norm.weight", rng.standard_normal(8).astype(np.float32))
        q = quantize(rng.standard_normal((2, 32)).astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor("blk.0.attn_q.weight", q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor("token_embd.weight", rng.standard_normal((5, 8)).astype(np.float16))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path.read_bytes()


def _gguf_reader_listing(path: Path) -> list:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    return [
        (t.name, tuple(int(d) for d in reversed(t.shape.tolist())), t.tensor_type.name, int(t.n_bytes))
        for t in reader.tensors
    ]


def check_gguf(path: Path, name: str) -> None:
    """Refused, or listed exactly as ``gguf.GGUFReader`` lists it."""
    outcome, result = refused_or_listed(lambda: read_gguf_header(path))
    _STATS.count(name, outcome)
    if outcome == "listed":
        entries, _ = result
        assert [(e.name, e.shape, e.dtype, e.nbytes) for e in entries] == _gguf_reader_listing(path)


def prop_gguf_mutations(data, tmp: Path) -> None:
    blob = bytearray(small_gguf())
    kind = data.draw(st.sampled_from(["bytes", "counts", "magic", "version", "truncate"]), label="gguf edit")
    if kind == "bytes":
        blob = bytearray(_mutate_bytes(data, bytes(blob)))
    elif kind == "counts":  # tensor count at byte 8, metadata count at byte 16
        at = data.draw(st.sampled_from([8, 16]))
        blob[at : at + 8] = struct.pack(
            "<Q", data.draw(st.one_of(st.sampled_from(INTERESTING_U64), st.integers(0, 2**64 - 1)))
        )
    elif kind == "magic":
        blob[:4] = data.draw(st.binary(min_size=4, max_size=4).filter(lambda b: b != b"GGUF"))
    elif kind == "version":
        blob[4:8] = struct.pack("<I", data.draw(st.integers(0, 2**32 - 1)))
    else:
        del blob[data.draw(st.integers(0, len(blob))) :]
    path = tmp / "model.gguf"
    path.write_bytes(bytes(blob))
    check_gguf(path, "gguf_mutations")


def prop_gguf_alignment(data, tmp: Path) -> None:
    """``general.alignment`` of any type and value (GGUF asks for a u32 power of two)."""
    adder, values = data.draw(
        st.sampled_from(
            [
                ("add_uint32", st.sampled_from([0, 1, 3, 8, 32, 48, 2**31, 2**32 - 1])),
                ("add_int32", st.integers(-(2**31), 2**31 - 1)),
                ("add_uint64", st.sampled_from([0, 32, 2**63, 2**64 - 1])),
                ("add_float32", st.sampled_from([0.0, 32.0, -1.0, float("nan"), float("inf")])),
                ("add_string", st.sampled_from(["32", "x", ""])),
                ("add_bool", st.booleans()),
            ]
        ),
        label="alignment type",
    )
    try:
        blob = small_gguf((adder, data.draw(values, label="alignment")))
    except (ValueError, OverflowError, struct.error):
        return  # the writer itself refuses this value
    path = tmp / "aligned.gguf"
    path.write_bytes(blob)
    check_gguf(path, "gguf_alignment")


# ----- MLX -----------------------------------------------------------------------------------------


def prop_mlx_triplets(data, tmp: Path) -> None:
    """A triplet whose stored shapes, config bits/group size and parts may disagree."""
    from safetensors.numpy import save_file

    out = data.draw(st.integers(1, 4), label="out")
    n_in = data.draw(st.sampled_from([32, 64, 96, 128, 256]), label="in")
    bits = data.draw(st.sampled_from(VALID_BITS), label="stored bits")
    group = data.draw(st.sampled_from([32, 64, 128]), label="stored group")
    packed_cols = data.draw(st.one_of(st.just(n_in * bits // 32), st.integers(0, 80)), label="packed cols")
    groups = data.draw(st.one_of(st.just(max(n_in // group, 1)), st.integers(0, 9)), label="scale cols")
    scales_shape = data.draw(
        st.one_of(st.just([out, groups]), st.lists(st.integers(0, 5), max_size=3)), label="scales shape"
    )
    tensors = {
        "lin.weight": np.zeros((out, packed_cols), np.uint32),
        "lin.scales": np.zeros(scales_shape, data.draw(st.sampled_from([np.float16, np.float32, np.uint8]))),
        "lin.biases": np.zeros(
            data.draw(st.one_of(st.just(scales_shape), st.lists(st.integers(0, 5), max_size=3))), np.float16
        ),
    }
    if data.draw(st.booleans(), label="drop a part"):
        del tensors[data.draw(st.sampled_from(["lin.scales", "lin.biases"]))]
    save_file(tensors, str(tmp / "model.safetensors"))
    value = st.one_of(st.sampled_from([*VALID_BITS, 1, 7, 16, 0, -4, 4.0, True]), st.none(), st.text(max_size=2))
    block = data.draw(
        st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {"bits": value, "group_size": st.one_of(st.sampled_from([32, 64, 128, 0, 48, 64.0]), st.none())}
            ),
            st.fixed_dictionaries(
                {
                    "bits": st.just(bits),
                    "group_size": st.just(group),
                    "lin": st.one_of(
                        st.just(False), st.fixed_dictionaries({"bits": value, "group_size": st.just(group)})
                    ),
                }
            ),
            st.sampled_from([[], "8bit", 4]),
        ),
        label="quantization",
    )
    if block is not None:
        (tmp / "config.json").write_text(json.dumps({"model_type": "llama", "quantization": block}))
    outcome, layout = refused_or_listed(lambda: read_layout(tmp))
    _STATS.count("mlx_triplets", outcome)
    if outcome == "listed":
        by_name = {t.name: t for t in layout.tensors}
        if "lin" in by_name:  # accepted as a triplet: the shapes obey MLX's packing rule
            t = by_name["lin"]
            weight, scales, biases = t.parts
            assert t.spec.bits in VALID_BITS and t.spec.group_size in (32, 64, 128)
            assert weight.shape[-1] * 32 == t.shape[-1] * t.spec.bits
            assert scales.shape == biases.shape and scales.shape[-1] * t.spec.group_size == t.shape[-1]
        else:  # listed as plain tensors: then it is no triplet (no uint32 weight beside scales)
            assert not ("lin.weight" in by_name and "lin.scales" in by_name)


# ----- task files (the user's own CSV / JSON Lines) ----------------------------------------------

_HOSTILE_JSON_VALUES = [
    "[" * 5000 + "]" * 5000,  # deeper than any parser's recursion
    "9" * 5000,  # past Python's 4300-digit conversion limit
    '"\\ud800"',  # a lone surrogate (valid JSON, not text)
    '"a\u2028b\u0085c\u2029"',  # separators str.splitlines() splits on, raw inside a string
    '"\\u2028"',
    "1e999",  # infinite float
    "NaN",
    "null",
    "true",
    '{"x": 1}',
    '""',
    '" "',
]


def _task_text(data, suffix: str) -> bytes:
    """A task file: rows built from hostile JSON values or CSV fields, then byte edits."""
    rows = []
    for _ in range(data.draw(st.integers(0, 4), label="rows")):
        prompt = data.draw(st.sampled_from(_HOSTILE_JSON_VALUES) | st.text(max_size=20).map(json.dumps))
        answer = data.draw(st.sampled_from(_HOSTILE_JSON_VALUES) | st.text(max_size=5).map(json.dumps))
        if suffix == ".jsonl":
            rows.append(f'{{"prompt": {prompt}, "answer": {answer}}}')
        else:
            rows.append(f"{prompt},{answer}")
    head = [] if suffix == ".jsonl" else [data.draw(st.sampled_from(["prompt,answer", "prompt,answer,group", "p,a"]))]
    newline = data.draw(st.sampled_from(["\n", "\r\n", "\u2028", "\x85"]), label="line end")
    blob = newline.join(head + rows).encode("utf-8", "surrogatepass")
    return _mutate_bytes(data, blob) if data.draw(st.booleans(), label="mutate") else blob


def _make_task_file(data, path: Path) -> None:
    """A regular file of hostile text, or something that is not one: a FIFO, a directory, a link to a device,
    a sparse file past the size bound."""
    kind = data.draw(st.sampled_from(["text"] * 6 + ["fifo", "directory", "device", "sparse"]), label="kind")
    if kind == "text":
        path.write_bytes(_task_text(data, path.suffix))
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "device":
        path.symlink_to("/dev/zero")
    else:
        with open(path, "wb") as handle:
            handle.truncate(data.draw(st.sampled_from([MAX_USER_FILE_BYTES + 1, 3_000_000_000])))


def prop_task_files(data, tmp: Path) -> None:
    """A hostile task file is refused with ``LayerscopeError`` or read into items whose prompts and answers
    are non-empty text (UTF-8 encodable), one item per row that pandas (CSV) or ``"\\n"`` (JSON Lines) finds."""
    from layerscope.tasks import load_task_file

    path = tmp / ("task" + data.draw(st.sampled_from([".jsonl", ".csv"]), label="suffix"))
    _make_task_file(data, path)
    outcome, task = refused_or_listed(lambda: load_task_file(path))
    _STATS.count("task_files", outcome)
    if outcome == "refused":
        return
    for item in task.items:
        assert item.prompt and item.answer, item
        (item.prompt + item.answer + item.group).encode("utf-8")
    raw = path.read_bytes().decode("utf-8")
    if path.suffix == ".jsonl":
        assert len(task.items) == sum(1 for line in raw.split("\n") if line.strip())
    else:
        import io

        import pandas as pd

        frame = pd.read_csv(io.StringIO(raw), dtype=str, keep_default_na=False)
        assert len(task.items) == len(frame)


PROPERTIES = {
    "safetensors_mutations": prop_safetensors_mutations,
    "sharded_index": prop_sharded_index,
    "gguf_mutations": prop_gguf_mutations,
    "gguf_alignment": prop_gguf_alignment,
    "mlx_triplets": prop_mlx_triplets,
    "task_files": prop_task_files,
}


def run_property(name: str, max_examples: int, stats: Stats | None = None, seed: int | None = None) -> None:
    """Run one property on ``max_examples`` hostile inputs (each in a fresh temporary directory)."""
    global _STATS
    _STATS = stats if stats is not None else Stats()

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(st.data())
    def check(data):
        with tempfile.TemporaryDirectory() as tmp:
            PROPERTIES[name](data, Path(tmp))

    if seed is not None:
        check = __import__("hypothesis").seed(seed)(check)
    check()
