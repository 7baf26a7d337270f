"""The one reader of user input files: regular files only, bounded, never blocking; JSON bounded; lines on "\\n"."""

from __future__ import annotations

import json
import os
import time

import pytest

from layerscope.errors import LayerscopeError
from layerscope.user_files import (
    MAX_INT_DIGITS,
    MAX_JSON_DEPTH,
    UserFileError,
    parse_json,
    read_user_bytes,
    read_user_text,
    text_lines,
)

SEPARATORS = "\u0085\u2028\u2029\x0b\x0c\x1c\x1d\x1e"  # every separator str.splitlines() splits on, but "\n", "\r"


def test_a_regular_file_is_read_whole(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_bytes("5+2=\r\ncaf\u00e9\n".encode())
    assert read_user_text(path, "prompts file") == "5+2=\r\ncaf\u00e9\n"
    assert read_user_bytes(path, "prompts file", limit=12) == path.read_bytes()


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda p: os.mkfifo(p), "is a FIFO, socket or device, not a regular file"),
        (lambda p: p.mkdir(), "is a directory, not a regular file"),
        (lambda p: None, "does not exist; give a regular file"),
        (lambda p: p.write_bytes(b"x" * 12), "is 12 bytes; at most 11 accepted"),
        (lambda p: p.write_bytes(b"ok \xff\xfe"), r"is not UTF-8 text (byte 3: b'\xff')"),
        (lambda p: p.write_bytes(b"\xed\xa0\x80"), "is not UTF-8 text (byte 0"),  # an encoded lone surrogate
    ],
    ids=["fifo", "directory", "missing", "too-big", "latin-1", "surrogate"],
)
def test_what_is_not_a_small_regular_utf8_file_is_refused_at_once(tmp_path, make, problem):
    path = tmp_path / "input"
    make(path)
    start = time.monotonic()
    with pytest.raises(UserFileError) as caught:
        read_user_text(path, "prompts file", limit=11)
    assert time.monotonic() - start < 1  # a FIFO with no writer never blocks the reader
    assert caught.value.problem == problem or caught.value.problem.startswith(problem)
    assert str(caught.value) == f"prompts file {str(path)!r} {caught.value.problem}"


def test_a_device_is_refused_without_reading_it():
    with pytest.raises(UserFileError, match="'/dev/zero' is a FIFO, socket or device"):
        read_user_bytes("/dev/zero", "prompts file")


def test_a_sparse_file_is_refused_by_its_size_before_any_read(tmp_path):
    path = tmp_path / "task.jsonl"
    with open(path, "wb") as handle:
        handle.truncate(3_000_000_000)
    with pytest.raises(UserFileError, match="is 3000000000 bytes; at most 8388608 accepted"):
        read_user_bytes(path, "task file")


def test_text_lines_split_on_newline_only():
    text = "".join(f"a{sep}b\n" for sep in SEPARATORS) + "last\r\n\nno end"
    assert text_lines(text) == [f"a{sep}b" for sep in SEPARATORS] + ["last", "", "no end"]
    assert len(text.splitlines()) > len(text_lines(text))  # what str.splitlines would have broken
    assert text_lines("") == [] and text_lines("\n") == [""]


def test_parse_json_keeps_what_json_keeps():
    text = json.dumps({"prompt": "a" + SEPARATORS, "answer": 10**99, "n": [1.5, None, True]})
    assert parse_json(text, "'t.jsonl' line 1") == json.loads(text)
    assert parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, "x") is not None


@pytest.mark.parametrize(
    "text, problem",
    [
        ("[" * 200_000 + "]" * 200_000, f"nested too deeply (more than {MAX_JSON_DEPTH} levels)"),
        (
            "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
            f"nested too deeply (more than {MAX_JSON_DEPTH} levels)",
        ),
        ('{"answer": ' + "9" * 5000 + "}", f"an integer of 5000 digits (at most {MAX_INT_DIGITS})"),
        ("-" + "9" * (MAX_INT_DIGITS + 1), f"an integer of {MAX_INT_DIGITS + 1} digits (at most {MAX_INT_DIGITS})"),
        ('{"prompt": "1+1=\\ud800"}', r"a lone surrogate '\ud800' is not text"),
        ('{"\\udfff": "key"}', r"a lone surrogate '\udfff' is not text"),
        ('{"prompt": "a",', "Expecting property name enclosed in double quotes (column 16)"),
    ],
    ids=["200k-deep", "one-too-deep", "5000-digits", "negative", "surrogate", "surrogate-key", "syntax"],
)
def test_parse_json_refuses_in_one_line(text, problem):
    with pytest.raises(LayerscopeError) as caught:
        parse_json(text, "'t.jsonl' line 3")
    assert str(caught.value) == f"'t.jsonl' line 3 is not valid JSON: {problem}"
