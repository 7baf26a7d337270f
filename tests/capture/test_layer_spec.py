"""Layer names (embed, 0..n-1, norm), depths and titles: parsing and one-line errors."""

from __future__ import annotations

import pytest

from layerscope.capture import FINAL_NORM, check_layers_syntax, layer_depth, layer_name, layer_title, parse_layers
from layerscope.errors import LayerscopeError


def test_parse_layers():
    assert parse_layers("all", 3) == [0, 1, 2, 3]
    assert parse_layers(None, 2) == [0, 1, 2]
    assert parse_layers("embed,0,6,-1", 18) == [0, 1, 7, 18]
    assert parse_layers("-18, 5 ,5", 18) == [1, 6]
    assert parse_layers([2, "norm", "embedding"], 3) == [3, FINAL_NORM, 0]
    assert parse_layers(-1, 3) == [3]


def test_layer_names_depths_and_titles():
    depths = parse_layers("embed,0,6,-1", 18) + [FINAL_NORM]
    assert [layer_name(d) for d in depths] == ["embed", "0", "6", "17", "norm"]
    assert [layer_depth(d, 18) for d in depths] == [0, 1, 7, 18, 19]
    assert [layer_title(d) for d in depths] == ["embed", "block 0", "block 6", "block 17", "norm (final)"]


@pytest.mark.parametrize(
    "spec, words", [("18", "out of range"), ("-19", "out of range"), ("a", "'a'"), ("1,", "empty"), ([], "no layer")]
)
def test_bad_layers(spec, words):
    with pytest.raises(LayerscopeError, match=words):
        parse_layers(spec, 18)


@pytest.mark.parametrize("spec", ["all", "embed,0,6,-1", "norm", "embedding, 3", 5, ["embed", -1]])
def test_layers_syntax_needs_no_model(spec):
    check_layers_syntax(spec)


@pytest.mark.parametrize(
    "spec, words", [("0,x", "'x'"), ("0,,1", "empty item"), ("", "empty item"), ([], "empty item")]
)
def test_bad_layers_syntax(spec, words):
    with pytest.raises(LayerscopeError, match=words):
        check_layers_syntax(spec)
