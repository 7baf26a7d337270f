"""Names read from files are made printable in one place: for terminals, markdown and HTML tables, file names."""

from __future__ import annotations

import pytest
from tiny_gguf import write_tiny_gguf

from layerscope.cli import main
from layerscope.models.names import MAX_NAME_CHARS, printable_name


@pytest.mark.parametrize(
    "text, name",
    [
        ("Gemma 3 270m", "Gemma 3 270m"),
        ("\x1b[2J\x1b[31mred\x1b[0m model", "red model"),  # CSI sequences dropped whole
        ("\x1b]0;title\x07tiny", "tiny"),  # an OSC (window title) dropped whole
        ("a\nb\r\nc\u2028d\u0085e\x00f\tg", "a b c d e f g"),
        ("left\u202eright\u200b", "left right"),  # bidi override and zero-width space
        ("org/name\\x", "org-name-x"),
        ("..-~/etc", "etc"),
        ("\x1b[31m\n \u2029", None),
        (42, None),
        ("w" * 500, "w" * (MAX_NAME_CHARS - 3) + "..."),
    ],
)
def test_printable_name(text, name):
    assert printable_name(text) == name


def test_an_ansi_gguf_name_never_reaches_the_terminal(tmp_path, monkeypatch, capsys):
    """A GGUF whose ``general.name`` clears the screen and forges an output line: the model's name is its visible
    text, in the terminal and in the run's files."""
    monkeypatch.setenv("LAYERSCOPE_CACHE", str(tmp_path / "cache"))
    path = write_tiny_gguf(tmp_path / "evil.gguf", name="\x1b[2J\x1b[31mEvil\nlayerscope: error: forged|x")
    code = main(["inspect", "--model", str(path), "--prompt", "1+1=", "--out", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    for text in (captured.out, captured.err, *(p.read_text() for p in (tmp_path / "run").glob("*.json"))):
        assert "\x1b" not in text and "\\u001b" not in text
    assert "Evil layerscope: error: forged|x" in (tmp_path / "run" / "run.json").read_text()
    assert not any(line.startswith("layerscope: error") for line in captured.err.splitlines())


@pytest.mark.parametrize("name", ["a\nb", "x\x1b[2Jy", "tab\there", "sep\u2028"])
def test_a_given_name_with_a_control_character_is_refused(name):
    from layerscope.errors import LayerscopeError
    from layerscope.model_spec import ModelSpec, split_named_source

    with pytest.raises(LayerscopeError, match="is not a plain name: give one without '=', '/' or '\\\\', control"):
        ModelSpec(source="default", name=name).validate()
    assert split_named_source(f"{name}=default") == (None, f"{name}=default")  # not read as NAME=SOURCE
