"""The tokens experiment (seed 000): rows, projection, outputs, and the command line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import layerscope
from layerscope.cli import main


def test_rows_equal_input_embedding_rows(tiny):
    result = layerscope.tokens(["digits", "colors"], model=tiny, dims=2, multi_token="first")
    weight = tiny.module.get_input_embeddings().weight
    for row, ids in zip(result.embeddings, result.table["token_ids"]):
        first = int(ids.split()[0])
        np.testing.assert_array_equal(row, weight[first].detach().numpy())


def test_mean_policy_averages_the_word_tokens(tiny_models):
    model = tiny_models["qwen3"]
    result = layerscope.tokens([], tokens="Supercalifragilistic,red", model=model, dims=2)
    ids = [int(i) for i in result.table["token_ids"][0].split()]
    assert len(ids) > 1 and "Supercalifragilistic" in result.split_words
    expected = model.embedding_matrix[ids].mean(0).detach().numpy()
    np.testing.assert_allclose(result.embeddings[0], expected, rtol=1e-6)


def test_basis_set_projects_the_others_on_its_pcs(tiny_models):
    from sklearn.decomposition import PCA

    result = layerscope.tokens(["digits", "number-words"], model=tiny_models["llama"], dims=3, basis_set="digits")
    digits = result.table["set"] == "digits"
    ref = PCA(3, svd_solver="full").fit(result.embeddings[digits.to_numpy()])
    coords = result.table[["pc1", "pc2", "pc3"]].to_numpy()
    signs = np.sign(np.sum(result.basis.components * ref.components_, axis=1))
    np.testing.assert_allclose(coords * signs, ref.transform(result.embeddings), atol=1e-6)


def test_normalize_projects_the_directions_of_the_rows(tiny_models):
    """``normalize=True``: the PCA (sklearn here) is of each row divided by its norm; the rows are kept as read."""
    from sklearn.decomposition import PCA

    plain = layerscope.tokens(["digits"], model=tiny_models["llama"], dims=2)
    result = layerscope.tokens(["digits"], model=tiny_models["llama"], dims=2, normalize=True)
    np.testing.assert_array_equal(result.embeddings, plain.embeddings)
    units = result.embeddings / np.linalg.norm(result.embeddings, axis=1, keepdims=True)
    ref = PCA(2, svd_solver="full").fit(units)
    signs = np.sign(np.sum(result.basis.components * ref.components_, axis=1))
    np.testing.assert_allclose(result.table[["pc1", "pc2"]].to_numpy() * signs, ref.transform(units), atol=1e-5)
    assert not np.allclose(np.abs(result.table["pc1"]), np.abs(plain.table["pc1"]), atol=1e-3)


def test_save_writes_every_output(tiny_models, tmp_path):
    result = layerscope.tokens(["digits"], model=tiny_models["gemma3"], dims=3)
    out = result.save(tmp_path / "run")
    names = {p.name for p in out.iterdir()}
    assert {"run.json", "projection.csv", "embeddings.npy", "index.html", "figure.png"} <= names
    assert not [n for n in names if n.endswith(".part")]
    table = pd.read_csv(out / "projection.csv")
    assert {"set", "label", "token_ids", "pc1", "pc2", "pc3"} <= set(table.columns)
    np.testing.assert_array_equal(np.load(out / "embeddings.npy"), result.embeddings)
    record = json.loads((out / "run.json").read_text())
    assert record["models"][0]["fingerprint"] == tiny_models["gemma3"].fingerprint
    assert record["config"]["dims"] == 3 and "torch" in record["versions"]
    html = (out / "index.html").read_text()
    assert "plotly" in html and "PC1 (" in html and '<script src="http' not in html  # self-contained


def test_figure_has_a_trace_per_set_with_labels(tiny_models):
    fig = layerscope.tokens(["digits", "number-words"], model=tiny_models["llama"], dims=2).figure()
    assert [t.name for t in fig.data] == ["digits", "number-words"]
    assert list(fig.data[0].text) == list("0123456789")
    assert fig.layout.xaxis.title.text.startswith("PC1 (")


@pytest.mark.default_model
def test_seed_000_on_the_default_model(default_model, tmp_path):
    result = layerscope.tokens(["digits", "number-words"], model=default_model, dims=3)
    assert len(result.table) == 20 and not result.split_words
    ids = [int(i) for i in result.table["token_ids"]]
    expected = default_model.module.get_input_embeddings().weight[ids].detach().numpy()
    np.testing.assert_array_equal(result.embeddings, expected)
    assert 0 < sum(result.explained_variance_ratio) <= 1


# ----- the command line ---------------------------------------------------------------------


def test_cli_writes_run_directory(tiny_model_dirs, tmp_path, capsys):
    out = tmp_path / "cli-run"
    code = main(
        [
            "--quiet",
            "tokens",
            "--model",
            str(tiny_model_dirs["llama"]),
            "--set",
            "digits",
            "--dims",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    assert (out / "figure.png").stat().st_size > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["tokens", "--dims", "4"], "--dims 4 is not supported; valid: 2, 3"),
        (["tokens", "--set", "nope"], "unknown token set 'nope'"),
        (["tokens", "--tokens", "a,,b"], "has an empty item"),
        (["tokens", "--model", "/no/such/dir"], "no such model file or directory: '/no/such/dir'"),
        (["tokens", "--multi-token", "max"], "--multi-token max is not supported; valid: 'mean', 'first', 'last'"),
        (["tokens", "--dims", "x"], "'x' is not an integer"),
        (["tokens", "--set", "digits", "--basis-set", "colors"], "--basis-set colors is not among the sets"),
        (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(argv, message, capsys, tiny_model_dirs):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_empty_set_file(tmp_path, capsys):
    path = tmp_path / "empty.txt"
    path.write_text("\n")
    assert main(["tokens", "--set", str(path)]) == 2
    assert "is empty" in capsys.readouterr().err


def test_lines_join_only_ordered_sets(tiny_models):
    result = layerscope.tokens(["digits", "colors", "months"], model=tiny_models["llama"], dims=2)
    modes = {trace.name: trace.mode for trace in result.figure().data}
    assert modes == {"digits": "markers+text+lines", "colors": "markers+text", "months": "markers+text+lines"}
    lines = {len(ax.lines) for ax in result.images()["figure"]().axes}
    assert lines == {2}  # digits and months in the PNG too
    mine = layerscope.tokens([], tokens="a,b,c", ordered="tokens", model=tiny_models["llama"], dims=2)
    assert mine.figure().data[0].mode == "markers+text+lines"
    with pytest.raises(layerscope.LayerscopeError, match="ordered='nope' is not among the sets"):
        layerscope.tokens(["digits"], ordered="nope", model=tiny_models["llama"])
