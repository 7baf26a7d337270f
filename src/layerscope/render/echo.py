"""The echo probe's tables as markdown and as an HTML page, and its bar chart. No statistics here.

Inputs come ready-made from the experiment: per BOS setting a dict of word-by-model grids
(``top1, echo, single_token, applicable, p_top1, p_echo, rank_echo``; index ``(set, word)``), the rates
table (``model, bos, applicable, n_words, n_echo, echo_rate``) and the completions table.
"""

from __future__ import annotations

import html
import unicodedata

import pandas as pd
import plotly.graph_objects as go

from .bar_figure import Bars, GroupedBars
from .palette import PALETTE

SPLIT_NOTE = (
    "* the word is several tokens in this model: all its tokens were fed, and the echo target is its first token."
)
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def token_label(text: object) -> str:
    """A token as the seed writes it: quoted, spaces kept, control characters escaped (``' John'``, ``'\\n'``)."""
    if not isinstance(text, str):
        return "n/a"
    return "'" + "".join(_ESCAPES.get(ch, ch) for ch in text) + "'"


_MARKDOWN_SPECIAL = frozenset("\\`*_[]<>|#~!&")


def markdown_text(text: object) -> str:
    """``text`` (a model or set name) as literal text in a markdown table cell: line breaks and other control or
    separator characters as spaces, markdown's special characters (``|``, ``*``, ``<``, ...) backslash-escaped."""
    spaced = " ".join("".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in str(text)).split())
    return "".join("\\" + ch if _special(spaced, i) else ch for i, ch in enumerate(spaced))


def _special(text: str, i: int) -> bool:
    """Whether ``text[i]`` needs a backslash: markdown's special characters, except an underscore between two
    letters or digits (``q4_k_m``), which never starts emphasis."""
    if text[i] != "_":
        return text[i] in _MARKDOWN_SPECIAL
    return not (0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum())


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


def rate_text(row) -> str:
    """``17/18 (94%)``, or ``n/a`` where the setting does not apply."""
    if not row["applicable"]:
        return "n/a"
    return f"{row['n_echo']}/{row['n_words']} ({100 * row['echo_rate']:.0f}%)"


def _rate_cells(rates: pd.DataFrame, bos: str, models: list[str]) -> list[str]:
    part = rates[rates["bos"] == bos].set_index("model")
    return [rate_text(part.loc[m]) if m in part.index else "" for m in models]


def _cell(grids: dict[str, pd.DataFrame], key, model: str) -> tuple[str, bool, bool]:
    """(label, echoed, split) for one word and model; label ``n/a`` where the setting does not apply."""
    if not bool(grids["applicable"].at[key, model]):
        return "n/a", False, False
    return (
        token_label(grids["top1"].at[key, model]),
        bool(grids["echo"].at[key, model]),
        not bool(grids["single_token"].at[key, model]),
    )


def _word_column(grid: pd.DataFrame, texts: dict) -> tuple[list[str], bool]:
    sets = list(dict.fromkeys(s for s, _ in grid.index))
    return [token_label(texts[key]) for key in grid.index], len(sets) > 1


def echo_markdown(
    grids: dict[str, dict[str, pd.DataFrame]],
    texts: dict,
    rates: pd.DataFrame,
    completions: pd.DataFrame,
    max_new_tokens: int,
) -> str:
    """Markdown: one table per BOS setting (rows = words, columns = models, **bold** = echo), then completions."""
    lines = ["# Echo probe: one token in, what comes out", ""]
    lines.append("Cells: the most probable next token after the word alone. **Bold**: the model repeats the word.")
    any_split = False
    for bos, g in grids.items():
        models = list(g["top1"].columns)
        words, show_set = _word_column(g["top1"], texts)
        head = (["Set"] if show_set else []) + ["Word"] + [markdown_text(m) for m in models]
        lines += ["", f"## {bos.capitalize()} BOS", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for key, word in zip(g["top1"].index, words):
            cells = []
            for model in models:
                label, echoed, split = _cell(g, key, model)
                text = _code(label) if label != "n/a" else label
                any_split |= split
                cells.append((f"**{text}**" if echoed else text) + (" \\*" if split else ""))
            lead = ([markdown_text(key[0])] if show_set else []) + [_code(word)]
            lines.append("| " + " | ".join(lead + cells) + " |")
        lead = ["", "echo rate"] if show_set else ["echo rate"]
        lines.append("| " + " | ".join(lead + _rate_cells(rates, bos, models)) + " |")
    if any_split:
        lines += ["", "\\" + SPLIT_NOTE]
    lines += _completion_markdown(completions, max_new_tokens)
    return "\n".join(lines) + "\n"


def _completion_markdown(completions: pd.DataFrame, max_new_tokens: int) -> list[str]:
    if completions.empty:
        return []
    settings = list(dict.fromkeys(completions["bos"]))
    lines = ["", f"## Completions (greedy, {max_new_tokens} new tokens)"]
    for prompt, part in completions.groupby("prompt", sort=False):
        lines += ["", f"Prompt: {_code(token_label(prompt))}", ""]
        lines += ["| Model | " + " | ".join(f"{b} BOS" for b in settings) + " |", "|" + " --- |" * (len(settings) + 1)]
        for model, rows in part.groupby("model", sort=False):
            by_bos = rows.set_index("bos")
            cells = [
                _code(token_label(by_bos.at[b, "completion"])) if bool(by_bos.at[b, "applicable"]) else "n/a"
                for b in settings
            ]
            lines.append(f"| {markdown_text(model)} | " + " | ".join(cells) + " |")
    return lines


def rates_bars(rates: pd.DataFrame) -> GroupedBars:
    """The echo rate of each model, one bar per BOS setting (n/a settings left out), as one description
    (``rates``: ``model, bos, applicable, n_echo, n_words, echo_rate``)."""
    models = list(dict.fromkeys(rates["model"].astype(str)))
    groups = []
    for i, (bos, part) in enumerate(rates.groupby("bos", sort=False)):
        by_model = {str(row["model"]): row for _, row in part.iterrows() if row["applicable"]}
        values = [float(by_model[m]["echo_rate"]) if m in by_model else None for m in models]
        texts = [rate_text(by_model[m]) if m in by_model else "" for m in models]
        groups.append(Bars(f"{bos} BOS", values, texts, PALETTE[i % len(PALETTE)]))
    return GroupedBars(
        "Echo rate: the top-1 next token is the word itself",
        models,
        groups,
        y_title="echo rate",
        y_range=(0, 1.15),
        percent=True,
        legend_title="input",
    )


def rates_figure(rates: pd.DataFrame) -> go.Figure:
    """:func:`rates_bars`, interactive."""
    return rates_bars(rates).plotly()


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0 2em; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; }
th { background: #f4f4f4; }
td code, th code { font-family: ui-monospace, monospace; white-space: pre; }
td.echo { background: #cdeccd; font-weight: 600; }
td.na { color: #999; background: #fafafa; }
tr.rate td { border-top: 2px solid #999; font-weight: 600; }
p.note { color: #555; font-size: 13px; }
"""


def _tooltip(g: dict[str, pd.DataFrame], key, model: str) -> str:
    return (
        f"p(top1) {g['p_top1'].at[key, model]:.3f} · p(echo) {g['p_echo'].at[key, model]:.3g} · "
        f"rank of echo {int(g['rank_echo'].at[key, model])}"
    )


def _html_table(g: dict[str, pd.DataFrame], texts: dict, rates: pd.DataFrame, bos: str) -> str:
    models = list(g["top1"].columns)
    words, show_set = _word_column(g["top1"], texts)
    head = (["set"] if show_set else []) + ["word"] + models
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for key, word in zip(g["top1"].index, words):
        cells = [f"<td>{html.escape(key[0])}</td>"] if show_set else []
        cells.append(f"<td><code>{html.escape(word)}</code></td>")
        for model in models:
            label, echoed, split = _cell(g, key, model)
            if label == "n/a":
                cells.append('<td class="na">n/a</td>')
                continue
            mark = " *" if split else ""
            cls = ' class="echo"' if echoed else ""
            tip = html.escape(_tooltip(g, key, model), quote=True)
            cells.append(f'<td{cls} title="{tip}"><code>{html.escape(label)}</code>{mark}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    lead = "<td></td><td>echo rate</td>" if show_set else "<td>echo rate</td>"
    out.append('<tr class="rate">' + lead + "".join(f"<td>{c}</td>" for c in _rate_cells(rates, bos, models)) + "</tr>")
    return "\n".join(out) + "</table>"


def echo_html(
    grids: dict[str, dict[str, pd.DataFrame]],
    texts: dict,
    rates: pd.DataFrame,
    completions: pd.DataFrame,
    max_new_tokens: int,
    figure: go.Figure,
) -> str:
    """A self-contained page (plotly.js inlined, works offline): tables, bar chart, completions."""
    body = ["<h1>Echo probe: one token in, what comes out</h1>"]
    body.append(
        '<p class="note">Cells: the most probable next token after the word alone; green: the model repeats the '
        "word. Hover a cell for p(top1), p(echo) and the echo token's rank.</p>"
    )
    body.append(figure.to_html(include_plotlyjs=True, full_html=False, config={"displaylogo": False}))
    for bos, g in grids.items():
        body += [f"<h2>{html.escape(bos.capitalize())} BOS</h2>", _html_table(g, texts, rates, bos)]
    if any(not g["single_token"].fillna(True).astype(bool).all().all() for g in grids.values()):
        body.append(f'<p class="note">{html.escape(SPLIT_NOTE)}</p>')
    if not completions.empty:
        body.append(f"<h2>Completions (greedy, {max_new_tokens} new tokens)</h2>")
        view = completions.assign(completion=completions.get("completion", pd.Series(dtype=object)).map(token_label))
        view = view[["model", "prompt", "bos", "completion"]]
        body.append(view.to_html(index=False, escape=True, border=0))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>layerscope echo</title>"
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
