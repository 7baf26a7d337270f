"""Markdown and HTML of the echo tables: quoting, escaping, echo highlighting, split-word marks."""

from __future__ import annotations

import pandas as pd

from layerscope.render.echo import echo_html, echo_markdown, rates_bars, rates_figure, token_label


def _inputs():
    index = pd.MultiIndex.from_tuples([("s", "a"), ("s", "b")], names=["set", "word"])
    frame = lambda values: pd.DataFrame(values, index=index, columns=["m1", "m2"])  # noqa: E731
    grids = {
        "without": {
            "top1": frame([[" a", "|"], ["\n", " b"]]),
            "echo": frame([[True, False], [False, True]]),
            "single_token": frame([[True, True], [False, True]]),
            "applicable": frame([[True, True], [True, True]]),
            "p_top1": frame([[0.9, 0.5], [0.4, 0.8]]),
            "p_echo": frame([[0.9, 0.01], [0.1, 0.8]]),
            "rank_echo": frame([[1, 40], [3, 1]]),
        }
    }
    rates = pd.DataFrame(
        {
            "model": ["m1", "m2"],
            "bos": ["without"] * 2,
            "applicable": [True, True],
            "n_words": [2, 2],
            "n_echo": [1, 1],
            "echo_rate": [0.5, 0.5],
            "mean_p_echo": [0.5, 0.4],
        }
    )
    completions = pd.DataFrame(
        {
            "model": ["m1", "m2"],
            "prompt": ["p", "p"],
            "bos": ["without"] * 2,
            "applicable": [True, True],
            "completion": [" the", " Mary"],
        }
    )
    return grids, {("s", "a"): " a", ("s", "b"): " b"}, rates, completions


def test_token_label_quotes_and_escapes():
    assert token_label(" John") == "' John'" and token_label("\n") == "'\\n'" and token_label(None) == "n/a"


def test_markdown_table():
    md = echo_markdown(*_inputs(), max_new_tokens=3)
    assert "| Word | m1 | m2 |" in md
    assert "| `' a'` | **`' a'`** | `'\\|'` |" in md  # echo in bold, a pipe escaped inside the cell
    assert "| `' b'` | `'\\n'` \\* | **`' b'`** |" in md  # split word marked
    assert "| echo rate | 1/2 (50%) | 1/2 (50%) |" in md
    assert "| m2 | `' Mary'` |" in md


def test_html_highlights_echo_cells():
    grids, texts, rates, completions = _inputs()
    page = echo_html(grids, texts, rates, completions, 3, rates_figure(rates))
    assert page.count('class="echo"') == 2 and "rank of echo 40" in page
    assert "<code>&#x27;|&#x27;</code>" in page and page.startswith("<!DOCTYPE html>")
    assert "several tokens" in page  # one split word: the note is there


def test_hostile_model_and_set_names_stay_inside_their_cells():
    """A model named ``evil|name`` with a newline and markdown in it, a set name with a pipe: every table row
    keeps its columns (a ``|`` not escaped would add a column, a newline would end the row)."""
    grids, texts, rates, completions = _inputs()
    evil = "evil|name\n| forged | row |\x1b[31m *bold* <b>"
    rename = {"m2": evil}
    grids = {bos: {k: g.rename(columns=rename) for k, g in grid.items()} for bos, grid in grids.items()}
    index = pd.MultiIndex.from_tuples([("set|x", "a"), ("other", "b")], names=["set", "word"])
    grids = {bos: {k: g.set_axis(index) for k, g in grid.items()} for bos, grid in grids.items()}
    texts = {("set|x", "a"): " a", ("other", "b"): " b"}
    rates, completions = rates.replace(rename), completions.replace(rename)
    md = echo_markdown(grids, texts, rates, completions, max_new_tokens=3)
    table_rows = [line for line in md.splitlines() if line.startswith("|")]
    unescaped_pipes = [len(line.replace("\\|", "").split("|")) for line in table_rows]
    assert unescaped_pipes[:5] == [6] * 5 and unescaped_pipes[5:] == [4] * 4  # Set, Word, 2 models / Model + 1 BOS
    assert "forged" not in "".join(line for line in md.splitlines() if not line.startswith("|"))
    assert "\x1b" not in md and "<b>" not in md
    assert r"evil\|name \| forged \| row \| \[31m \*bold\* \<b\>" in md
    assert r"| set\|x |" in md


def test_the_rates_chart_and_its_png_come_from_one_description():
    _, _, rates, _ = _inputs()
    rates = pd.concat([rates, rates.assign(bos="with", applicable=[True, False], n_echo=[2, 0], echo_rate=[1.0, 0.0])])
    bars = rates_bars(rates)
    interactive = rates_figure(rates)
    assert [list(t.x) for t in interactive.data] == [["m1", "m2"], ["m1"]]  # n/a is left out, not drawn as 0
    assert [list(t.text) for t in interactive.data] == [["1/2 (50%)", "1/2 (50%)"], ["2/2 (100%)"]]
    png = bars.png()
    ax = png.axes[0]
    assert [round(p.get_height(), 6) for p in ax.patches] == [0.5, 0.5, 1.0]
    assert [t.get_text() for t in ax.texts] == ["1/2 (50%)", "1/2 (50%)", "2/2 (100%)"]
    assert min(t.get_fontsize() for t in ax.texts) >= 9
