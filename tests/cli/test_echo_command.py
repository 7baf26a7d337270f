"""``layerscope echo`` in-process: outputs, the summary, and bad input as one line with exit code 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from layerscope.cli import main


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("layerscope")]


def test_two_models_write_every_output(tiny_model_dirs, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--quiet", "echo", "--model", str(tiny_model_dirs["gemma2"]), "--model", str(tiny_model_dirs["qwen3"])]
    code = main([*argv, "--tokens", "red,John,Michael", "--top-k", "3", "--max-new-tokens", "2", "--out", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out / "echo.html")
    assert "gemma2: echo without BOS" in captured.err and "qwen3: echo without BOS" in captured.err
    table = pd.read_csv(out / "echo.csv")
    assert len(table) == 2 * 2 * 3
    for column in ("model", "word", "bos", "top1", "p_top1", "p_echo", "rank_echo", "single_token", "top3", "p_top3"):
        assert column in table.columns
    markdown = (out / "echo.md").read_text()
    assert "## Without BOS" in markdown and "## With BOS" in markdown and "| Word | gemma2 | qwen3 |" in markdown
    assert "Completions" in markdown
    assert "plotly" in (out / "echo.html").read_text()
    run = json.loads((out / "run.json").read_text())
    assert [m["display_name"] for m in run["models"]] == ["gemma2", "qwen3"] and run["failures"] == {}
    models = [run["command"][i + 1] for i, arg in enumerate(run["command"]) if arg == "--model"]
    assert run["command"][:2] == ["layerscope", "echo"]
    assert models == [str(tiny_model_dirs["gemma2"]), str(tiny_model_dirs["qwen3"])]
    assert (out / "echo.plotly.json").is_file()
    assert len(pd.read_csv(out / "completions.csv")) == 2 * 2


def test_unknown_model_one_line_exit_2_others_written(tiny_model_dirs, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--quiet", "echo", "--model", str(tiny_model_dirs["llama"]), "--model", "/no/such/model"]
    code = main([*argv, "--model", str(tiny_model_dirs["olmo3"]), "--tokens", "red", "--out", str(out)])
    assert code == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "/no/such/model" in lines[0]
    table = pd.read_csv(out / "echo.csv")
    assert list(dict.fromkeys(table["model"])) == ["llama", "olmo3"]
    assert "/no/such/model" in json.loads((out / "run.json").read_text())["failures"]


def test_no_model_loads_one_line_exit_2_nothing_written(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--quiet", "echo", "--model", "/no/such/model", "--tokens", "red", "--out", str(out)]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "no model could be probed" in lines[0] and "/no/such/model" in lines[0]
    assert not (out / "run.json").exists()


@pytest.mark.parametrize(
    "words",
    [["--tokens", " , "], ["--set", "EMPTY_FILE"], ["--set", "no-such-set"]],
)
def test_empty_or_bad_word_list_exit_2(words, tiny_model_dirs, tmp_path, capsys):
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    words = [str(empty) if w == "EMPTY_FILE" else w for w in words]
    out = tmp_path / "run"
    code = main(["--quiet", "echo", "--model", str(tiny_model_dirs["llama"]), *words, "--out", str(out)])
    assert code == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("layerscope: error:")
    assert not out.exists()


@pytest.mark.parametrize(
    "options", [["--bos", "maybe"], ["--top-k", "0"], ["--prompt", "  "], ["--max-new-tokens", "-1"]]
)
def test_bad_options_exit_2(options, tiny_model_dirs, capsys):
    assert main(["--quiet", "echo", "--model", str(tiny_model_dirs["llama"]), *options]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("layerscope")


def test_words_from_file_without_bos_only(tiny_model_dirs, tmp_path, capsys):
    words = tmp_path / "words.txt"
    words.write_text("# a comment\nred\nJohn\n")
    out = tmp_path / "run"
    argv = ["--quiet", "echo", str(words), "--model", str(tiny_model_dirs["gemma3"]), "--bos", "without"]
    assert main([*argv, "--no-leading-space", "--max-new-tokens", "0", "--out", str(out)]) == 0
    table = pd.read_csv(out / "echo.csv", keep_default_na=False)
    assert list(table["text"]) == ["red", "John"] and set(table["bos"]) == {"without"}
    assert "With BOS" not in (out / "echo.md").read_text()
