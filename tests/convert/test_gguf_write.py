"""GGUF re-quantization: tensors equal ``gguf.quants.quantize`` of the source, metadata is copied, layerscope loads it."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_gguf import gguf_to_hf, write_tiny_gguf

import layerscope
from layerscope.convert.gguf_write import gguf_types, write_gguf
from layerscope.errors import LayerscopeError

gguf = pytest.importorskip("gguf")
from gguf.quants import dequantize, quantize  # noqa: E402


@pytest.fixture(scope="module")
def tiny_gguf_file(tmp_path_factory):
    return write_tiny_gguf(tmp_path_factory.mktemp("tiny-gguf") / "tiny.gguf")


def _fields(reader) -> dict:
    return {
        f.name: ([t.name for t in f.types], f.contents())
        for f in reader.fields.values()
        if not f.name.startswith("GGUF.")
    }


@pytest.mark.parametrize("type_name", ["Q8_0", "Q4_0", "Q5_1", "F16", "BF16"])
def test_matrices_equal_gguf_quantize_and_vectors_are_kept(tmp_path, tiny_gguf_file, type_name):
    out = tmp_path / "out.gguf"
    summary = write_gguf(tiny_gguf_file, out, type_name)
    source = gguf.GGUFReader(str(tiny_gguf_file))
    written = gguf.GGUFReader(str(out))
    target = gguf.GGMLQuantizationType[type_name]
    assert [t.name for t in written.tensors] == [t.name for t in source.tensors]
    n_matrices = 0
    for src, got in zip(source.tensors, written.tensors):
        assert got.shape.tolist() == src.shape.tolist()
        if len(src.shape) >= 2:
            n_matrices += 1
            expected = quantize(dequantize(src.data, src.tensor_type), target)  # the oracle: gguf's own quantizer
            assert got.tensor_type == target
            assert np.array_equal(np.asarray(got.data).view(np.uint8), expected.view(np.uint8)), src.name
            assert np.array_equal(dequantize(got.data, target), dequantize(expected, target))
        else:
            assert got.tensor_type == src.tensor_type
            assert np.array_equal(np.asarray(got.data), np.asarray(src.data))
    assert summary["quantized"] == n_matrices and summary["fallback_f16"] == 0
    assert summary["kept"] == len(source.tensors) - n_matrices
    before, after = _fields(source), _fields(written)
    file_type = after.pop("general.file_type")
    before.pop("general.file_type")
    assert after == before  # every key, value and value type copied
    assert file_type[1] == int(getattr(gguf.LlamaFileType, f"MOSTLY_{type_name}"))


def test_rows_that_do_not_fill_a_block_fall_back_to_f16(tmp_path, tiny_gguf_file):
    # TQ2_0 packs 256 values per block; the tiny model's rows are 64 or 128 wide
    summary = write_gguf(tiny_gguf_file, tmp_path / "tq.gguf", "TQ2_0")
    written = gguf.GGUFReader(str(tmp_path / "tq.gguf"))
    matrices = [t for t in written.tensors if len(t.shape) >= 2]
    assert {t.tensor_type.name for t in matrices} == {"F16"}
    assert summary["fallback_f16"] == len(matrices) and summary["quantized"] == 0


def test_valid_types_are_those_gguf_quantizes():
    assert {"Q8_0", "F16", "BF16", "Q4_0"} <= set(gguf_types())
    assert "Q4_K" not in gguf_types()  # gguf.quants has no Q4_K quantizer
    with pytest.raises(NotImplementedError):
        quantize(np.zeros((1, 256), np.float32), gguf.GGMLQuantizationType.Q4_K)


def test_layerscope_loads_the_requantized_file(tmp_path, tiny_gguf_file, monkeypatch):
    monkeypatch.setenv("LAYERSCOPE_CACHE", str(tmp_path / "cache"))
    out = layerscope.quantize(str(tiny_gguf_file), to="gguf", type="Q8_0", out=tmp_path / "q8")
    assert out == tmp_path / "q8" / "model.gguf" and not [p for p in tmp_path.rglob("*") if p.name.endswith(".part")]
    model = layerscope.load_model(str(out))
    assert (model.n_layers, model.d_model, model.name) == (2, 64, "tiny llama")
    state = model.module.state_dict()
    for tensor in gguf.GGUFReader(str(out)).tensors:
        if tensor.name.split(".")[-2] in ("attn_q", "attn_k"):
            continue  # transformers permutes Llama's q/k rows back from llama.cpp's rotary layout
        expected = dequantize(tensor.data, tensor.tensor_type)
        assert np.array_equal(state[gguf_to_hf(tensor.name)].numpy(), expected), tensor.name


def test_gguf_output_needs_a_gguf_source(tmp_path, tiny_model_dirs):
    with pytest.raises(LayerscopeError, match="re-quantizes a GGUF file"):
        layerscope.quantize(str(tiny_model_dirs["llama"]), to="gguf", out=tmp_path / "x")
    assert not list(tmp_path.iterdir())
