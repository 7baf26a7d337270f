"""User tasks from CSV and JSONL files, and what happens with bad ones."""

from __future__ import annotations

import json

import pytest

from layerscope.errors import LayerscopeError
from layerscope.tasks import load_task_file


def test_csv_keeps_values_verbatim(tmp_path):
    path = tmp_path / "capitals.csv"
    path.write_text('prompt,answer,group\nThe capital of France is," Paris",europe\n"1,2,3,",4,\n', encoding="utf-8")
    task = load_task_file(path)
    assert task.name == "capitals"
    assert [(i.prompt, i.answer, i.group) for i in task.items] == [
        ("The capital of France is", " Paris", "europe"),
        ("1,2,3,", "4", ""),
    ]
    assert task.groups == ["europe"]


def test_jsonl(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(
        json.dumps({"prompt": "5+2=", "answer": 7}) + "\n\n" + json.dumps({"prompt": "a", "answer": "b"}) + "\n"
    )
    assert [(i.prompt, i.answer) for i in load_task_file(path).items] == [("5+2=", "7"), ("a", "b")]


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("t.csv", "prompt,expected\n5+2=,7\n", r"lacks column 'answer'; it has 'prompt', 'expected'"),
        ("t.csv", "", r"is empty; it needs columns prompt, answer"),
        ("t.csv", "prompt,answer\n", "has a header but no rows"),
        ("t.csv", "prompt,answer\n5+2=,\n", r"row 2: answer '' must be a non-empty string"),
        ("t.jsonl", '{"prompt": "a", "answer": "b"}\n{"prompt": "a",\n', r"line 2 is not valid JSON"),
        ("t.jsonl", '{"prompt": "a"}\n', r"line 1 lacks key 'answer'"),
        ("t.jsonl", "[1, 2]\n", r"line 1 is not a JSON object"),
        ("t.txt", "x", r"has suffix '.txt'; valid: .csv, .jsonl"),
    ],
)
def test_bad_files(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LayerscopeError, match=message):
        load_task_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(LayerscopeError, match="no such task file"):
        load_task_file(tmp_path / "nope.csv")
