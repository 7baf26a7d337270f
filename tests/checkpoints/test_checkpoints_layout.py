"""``layout``: headers read by layerscope agree with the safetensors and gguf libraries; bad files are refused."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from layerscope.checkpoints import read_layout
from layerscope.checkpoints.gguf_header import read_gguf_header
from layerscope.checkpoints.safetensors_header import read_safetensors_header
from layerscope.cli import main
from layerscope.errors import LayerscopeError

# safetensors' own names for numpy dtypes, as reported by ``get_slice(...).get_dtype()``.
_DTYPES = [np.float32, np.float16, np.int64, np.uint32, np.int8, np.uint8, np.float64, np.int16, np.bool_]


def _random_tensors(seed: int, n: int = 30) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        shape = tuple(int(d) for d in rng.integers(0, 7, size=rng.integers(0, 4)))
        dtype = _DTYPES[i % len(_DTYPES)]
        out[f"block.{i % 4}.part{i}.weight"] = np.zeros(shape, dtype=dtype)
    return out


def _library_listing(path) -> dict:
    with safe_open(str(path), framework="numpy") as handle:
        return {k: (tuple(handle.get_slice(k).get_shape()), handle.get_slice(k).get_dtype()) for k in handle.keys()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_safetensors_header_matches_library(tmp_path, seed):
    path = tmp_path / "model.safetensors"
    save_file(_random_tensors(seed), str(path), metadata={"format": "np"})
    entries, metadata = read_safetensors_header(path)
    assert {e.name: (e.shape, e.dtype) for e in entries} == _library_listing(path)
    assert metadata == {"format": "np"}
    assert sum(e.nbytes for e in entries) == path.stat().st_size - 8 - struct.unpack("<Q", path.read_bytes()[:8])[0]


def test_sharded_index_matches_library(tmp_path):
    tensors = _random_tensors(3)
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[:12], "model-00002-of-00002.safetensors": names[12:]}
    weight_map = {}
    for shard, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, str(tmp_path / shard))
        weight_map.update({k: shard for k in keys})
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    layout = read_layout(tmp_path)
    expected = {}
    for shard in shards:
        expected.update(_library_listing(tmp_path / shard))
    assert {e.name: (e.shape, e.dtype) for e in layout.entries} == expected
    assert layout.format == "safetensors (sharded)"
    assert layout.files == sorted(shards)


@pytest.mark.parametrize(
    "shard", ["../outside.safetensors", "/etc/passwd", "sub/../../x.safetensors", "missing.safetensors"]
)
def test_sharded_index_refuses_bad_shard_names(tmp_path, shard):
    inner = tmp_path / "ckpt"
    inner.mkdir()
    save_file({"a": np.zeros(2, np.float32)}, str(tmp_path / "outside.safetensors"))
    (inner / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": shard}}))
    with pytest.raises(LayerscopeError, match="shard"):
        read_layout(inner)


def test_sharded_index_name_missing_from_shard(tmp_path):
    save_file({"a": np.zeros(2, np.float32)}, str(tmp_path / "s1.safetensors"))
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors"}})
    )
    with pytest.raises(LayerscopeError, match="'b'"):
        read_layout(tmp_path)


def _write_raw(path, header: dict, data_bytes: int, length: int | None = None):
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + b"\0" * data_bytes)
    return path


@pytest.mark.parametrize(
    "header, data_bytes, length, message",
    [
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, 4, None, "truncated"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 12]}}, 12, None, "needs 8 bytes"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            12,
            None,
            "overlaps",
        ),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, 16, None, "gap"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, 8, 2**62, "does not fit"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, 8, 10**9, "does not fit"),
        ({"a": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}}, 8, None, "unknown dtype"),
        ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, 8, None, "non-negative"),
        ({"a": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, 8, None, "needs"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}, 8, None, "data_offsets"),
    ],
)
def test_lying_headers_are_refused_with_exit_2(tmp_path, capsys, header, data_bytes, length, message):
    path = _write_raw(tmp_path / "bad.safetensors", header, data_bytes, length)
    with pytest.raises(LayerscopeError, match=message):
        read_safetensors_header(path)
    assert main(["layout", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("layerscope: error:")


def test_truncated_real_file_and_non_json(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(_random_tensors(0), str(path))
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) - 5])
    with pytest.raises(LayerscopeError, match="truncated"):
        read_safetensors_header(tmp_path / "cut.safetensors")
    (tmp_path / "short.safetensors").write_bytes(data[:5])
    with pytest.raises(LayerscopeError, match="shorter"):
        read_safetensors_header(tmp_path / "short.safetensors")
    raw = b"[1, 2]"
    (tmp_path / "list.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw)
    with pytest.raises(LayerscopeError, match="JSON list"):
        read_safetensors_header(tmp_path / "list.safetensors")
    raw = b"\xff\xfe{"
    (tmp_path / "junk.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw)
    with pytest.raises(LayerscopeError, match="not valid JSON"):
        read_safetensors_header(tmp_path / "junk.safetensors")


def test_large_sparse_file_lists_without_reading_data(tmp_path):
    """A 1 GiB checkpoint (sparse on disk): the listing comes from the header alone."""
    header = {
        f"layers.{i}.weight": {
            "dtype": "F32",
            "shape": [1024, 1024],
            "data_offsets": [i * 4 * 2**20, (i + 1) * 4 * 2**20],
        }
        for i in range(256)
    }
    raw = json.dumps(header).encode()
    path = tmp_path / "big.safetensors"
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(8 + len(raw) + 2**30)
    layout = read_layout(path)
    assert layout.n_parameters == 2**28 and layout.n_bytes == 2**30
    assert _library_listing(path) == {e.name: (e.shape, e.dtype) for e in layout.entries}


# ----- GGUF ------------------------------------------------------------------------------------


def _write_gguf(path):
    import gguf
    from gguf.quants import quantize

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(2)
    writer.add_token_list([f"tok{i}" for i in range(300)])
    writer.add_string("general.name", "tiny")
    rng = np.random.default_rng(0)
    for i in range(2):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", rng.standard_normal(64).astype(np.float32))
        q = quantize(rng.standard_normal((32, 64)).astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor(f"blk.{i}.attn_q.weight", q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("token_embd.weight", rng.standard_normal((300, 64)).astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_gguf_header_matches_gguf_reader(tmp_path):
    from gguf import GGUFReader

    path = _write_gguf(tmp_path / "tiny.gguf")
    entries, metadata = read_gguf_header(path)
    reader = GGUFReader(str(path))
    expected = [
        (t.name, tuple(int(d) for d in reversed(t.shape.tolist())), t.tensor_type.name, int(t.n_bytes))
        for t in reader.tensors
    ]
    assert [(e.name, e.shape, e.dtype, e.nbytes) for e in entries] == expected
    assert metadata["general.architecture"] == "llama" and metadata["general.name"] == "tiny"
    assert ("blk.0.attn_q.weight", (32, 64), "Q8_0") in [(e.name, e.shape, e.dtype) for e in entries]


def test_gguf_truncated_and_garbage_are_refused(tmp_path, capsys):
    path = _write_gguf(tmp_path / "tiny.gguf")
    data = path.read_bytes()
    for name, blob in [("cut.gguf", data[:-100]), ("head.gguf", data[:200]), ("junk.gguf", b"GGUF" + b"\xff" * 60)]:
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(LayerscopeError):
            read_gguf_header(tmp_path / name)
        assert main(["layout", str(tmp_path / name)]) == 2
    assert capsys.readouterr().err.count("layerscope: error:") == 3


@pytest.mark.default_model
def test_default_gguf_layout_agrees_with_tensor_count(capsys):
    assert main(["layout", "default", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "gguf" and data["totals"]["tensors"] == 236
    assert data["metadata"]["general.architecture"] == "gemma3"


# ----- the tree -----------------------------------------------------------------------------------


def test_tree_folds_identical_layers_and_prints_totals(tmp_path, capsys):
    tensors = {
        "model.norm.weight": np.zeros(8, np.float16),
        "model.embed_tokens.weight": np.zeros((1000, 8), np.float16),
    }
    for i in range(5):
        tensors[f"model.layers.{i}.input_layernorm.weight"] = np.zeros(8, np.float16)
        tensors[f"model.layers.{i}.mlp.up_proj.weight"] = np.zeros((16 if i != 3 else 12, 8), np.float16)
        tensors[f"model.layers.{i}.mlp.down_proj.weight"] = np.zeros((8, 16), np.float16)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    html = tmp_path / "page.html"
    assert main(["layout", str(tmp_path), "--html", str(html)]) == 0
    out = capsys.readouterr().out
    lines = [line.strip() for line in out.splitlines()]
    assert "model(3)" in lines and "model.layers(5)" in lines and "model.layers.0(2)" in lines
    assert "model.layers.1-2: same as model.layers.0" in lines
    assert "model.layers.3(2)" in lines and "model.layers.4: same as model.layers.0" in lines
    assert "model.embed_tokens.weight [1\u2009000, 8] F16" in lines
    assert "model.layers.0.input_layernorm.weight [8] F16" in lines
    n_params = sum(t.size for t in tensors.values())
    assert f"total: {n_params:,} parameters".replace(",", "\u2009") in out
    assert "model.layers.3.mlp.up_proj.weight" in html.read_text() and html.read_text().startswith("<!doctype html>")
    assert main(["layout", str(tmp_path), "--no-fold", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["parameters"] == n_params and data["totals"]["by_dtype"]["F16"]["tensors"] == len(tensors)


def _seed_003_header() -> dict[str, tuple[list[int], str]]:
    """The tensors of EmbeddingGemma 300M as MLX 8-bit g64 (seed 003), as (shape, dtype)."""
    tensors: dict[str, tuple[list[int], str]] = {}

    def triplet(name, out, n_in):
        tensors[f"{name}.weight"] = ([out, n_in * 8 // 32], "U32")
        tensors[f"{name}.scales"] = ([out, n_in // 64], "F16")
        tensors[f"{name}.biases"] = ([out, n_in // 64], "F16")

    triplet("dense.0", 3072, 768)
    triplet("dense.1", 768, 3072)
    triplet("model.embed_tokens", 262144, 768)
    for i in range(24):
        p = f"model.layers.{i}"
        for norm in (
            "input_layernorm",
            "post_attention_layernorm",
            "post_feedforward_layernorm",
            "pre_feedforward_layernorm",
        ):
            tensors[f"{p}.{norm}.weight"] = ([768], "F16")
        triplet(f"{p}.mlp.down_proj", 768, 1152)
        triplet(f"{p}.mlp.gate_proj", 1152, 768)
        triplet(f"{p}.mlp.up_proj", 1152, 768)
        tensors[f"{p}.self_attn.k_norm.weight"] = ([256], "F16")
        tensors[f"{p}.self_attn.q_norm.weight"] = ([256], "F16")
        triplet(f"{p}.self_attn.k_proj", 256, 768)
        triplet(f"{p}.self_attn.o_proj", 768, 768)
        triplet(f"{p}.self_attn.q_proj", 768, 768)
        triplet(f"{p}.self_attn.v_proj", 256, 768)
    tensors["model.norm.weight"] = ([768], "F16")
    return tensors


def test_seed_003_embeddinggemma_mlx_layout(tmp_path, capsys):
    """The seed's checkpoint, header only (sparse file): the tree reads as in the seed, triplets as one tensor."""
    header, offset = {}, 0
    for name, (shape, dtype) in _seed_003_header().items():
        size = int(np.prod(shape)) * (4 if dtype == "U32" else 2)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    with open(tmp_path / "model.safetensors", "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(8 + len(raw) + offset)
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "gemma3_text", "quantization": {"group_size": 64, "bits": 8}})
    )
    assert main(["layout", str(tmp_path)]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    for expected in [
        "dense(2)",
        "dense.0: affine 8-bit g64 [3\u2009072, 768]",
        "dense.1: affine 8-bit g64 [768, 3\u2009072]",
        "model(3)",
        "model.embed_tokens: affine 8-bit g64 [262\u2009144, 768]",
        "model.layers(24)",
        "model.layers.0(6)",
        "model.layers.0.mlp(3)",
        "model.layers.0.mlp.down_proj: affine 8-bit g64 [768, 1\u2009152]",
        "model.layers.0.self_attn(6)",
        "model.layers.0.self_attn.k_norm.weight [256] F16",
        "model.layers.1-23: same as model.layers.0",
        "model.norm.weight [768] F16",
    ]:
        assert expected in lines, expected
    assert main(["layout", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    with safe_open(str(tmp_path / "model.safetensors"), framework="numpy") as handle:
        assert len(list(handle.keys())) == data["totals"]["stored_tensors"] == len(header)
    # parameters: unpacked sizes of the triplets + the float vectors
    expected_params = (
        3072 * 768 * 2 + 262144 * 768 + 24 * (3 * 1152 * 768 + 2 * 256 * 768 + 2 * 768 * 768 + 4 * 768 + 2 * 256) + 768
    )
    assert data["totals"]["parameters"] == expected_params


# ----- the memory a forward needs -------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["llama", "gemma3", "qwen3"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_forward_memory_weights_are_the_loaded_models_parameter_bytes(tiny_model_dirs, arch, dtype):
    from layerscope.checkpoints.layout import forward_memory, memory_estimate
    from layerscope.models import load_model

    model = load_model(str(tiny_model_dirs[arch]), dtype=dtype)
    loaded = sum(p.numel() * p.element_size() for p in model.module.parameters())  # tied weights count once
    estimate = memory_estimate(tiny_model_dirs[arch], dtype, batch=3, seq_len=17)
    assert estimate.weights == loaded
    assert forward_memory(tiny_model_dirs[arch], dtype, batch=3, seq_len=17) == estimate.total
    config = model.config
    width = 4 if dtype == "float32" else 2
    assert estimate.residuals == (config.num_hidden_layers + 2) * 3 * 17 * config.hidden_size * 4
    elements = 3 * 17 * (4 * config.hidden_size + 3 * config.intermediate_size)
    assert estimate.activations == (elements + 2 * 3 * config.num_attention_heads * 17**2) * width
    assert estimate.logits == 2 * 3 * config.vocab_size * 4
    assert estimate.total == estimate.weights + estimate.residuals + estimate.activations + estimate.logits


def test_forward_memory_grows_with_the_batch_not_the_weights(tiny_model_dirs):
    from layerscope.checkpoints.layout import memory_estimate

    one, eight = (memory_estimate(tiny_model_dirs["llama"], "float16", batch=b) for b in (1, 8))
    assert one.weights == eight.weights and eight.residuals == 8 * one.residuals
    with pytest.raises(LayerscopeError, match="at least 1"):
        memory_estimate(tiny_model_dirs["llama"], batch=0)


@pytest.mark.default_model
def test_forward_memory_of_the_default_gguf_from_its_header(default_model):
    from layerscope.checkpoints.default import default_model_path
    from layerscope.checkpoints.layout import forward_memory, memory_estimate, model_dims, read_layout

    loaded = sum(p.numel() for p in default_model.module.parameters())
    assert memory_estimate("default", "float32").weights == 4 * loaded
    assert memory_estimate("default", "bfloat16").weights == 2 * loaded
    dims = model_dims(read_layout(default_model_path()))
    config = default_model.config
    assert (dims.n_layers, dims.hidden, dims.intermediate, dims.vocab, dims.heads) == (
        config.num_hidden_layers,
        config.hidden_size,
        config.intermediate_size,
        config.vocab_size,
        config.num_attention_heads,
    )
    assert forward_memory("default", "bfloat16", batch=4, seq_len=512) < forward_memory("default", "float32")
