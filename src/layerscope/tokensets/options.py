"""The token-set options shared by every experiment that reads words (tokens, layers, capture, echo)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..experiment import ExperimentConfig, option
from .sources import merge_sets, resolve_set

MultiToken = Literal["mean", "first", "last"]


@dataclass(frozen=True, kw_only=True)
class TokenSetOptions(ExperimentConfig):
    """Which words, and how they become tokens.

    Attributes:
        sets: built-in set names (``digits``, ``number-words``, ``categories``, ...) or JSON/YAML/text files.
        tokens: extra words given inline, as one set named ``tokens``.
        leading_space: tokenize ``" word"`` instead of ``"word"``.
        multi_token: how a word of several tokens becomes one vector: ``mean``, ``first`` or ``last``.
    """

    sets: tuple[str, ...] = option(
        (),
        flag="--set",
        metavar="NAME|FILE",
        help="a built-in set (digits, number-words, categories, boy_first_names, ...) or a JSON/YAML/text file; "
        "repeatable",
    )
    tokens: tuple[str, ...] = option((), join=",", metavar="A,B,C", help="an inline set of comma-separated words")
    leading_space: bool = option(False, help="tokenize ' word' instead of 'word'")
    multi_token: MultiToken = option(
        "mean", help="how a word that splits into several tokens becomes one vector (default: mean)"
    )

    def word_sets(self) -> dict[str, list[str]]:
        """The resolved ``{set: words}`` (reads set files); a :class:`ConfigError` names a bad set."""
        if isinstance(self.sets, str) or isinstance(self.tokens, str):
            raise self.error(
                "sets", self.sets, "must be a tuple of names (the Python API accepts one name as a string)"
            )
        parts = [resolve_set(name) for name in self.sets]  # each error names the set and the valid ones
        if self.tokens:
            words = [str(w).strip() for w in self.tokens]
            if any(not w for w in words):
                raise self.error(
                    "tokens", ",".join(map(str, self.tokens)), "has an empty item; give words such as 'red,green,blue'"
                )
            parts.append({"tokens": words})
        sets = merge_sets(parts)
        if not sets:
            raise self.error(
                "sets", list(self.sets), "names no words; give a set (digits, number-words, categories) or tokens"
            )
        return sets


def inline_words(tokens: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``"a, b,c"`` or ``["a", "b"]`` -> ``("a", "b", "c")``; None -> ``()``."""
    if tokens is None:
        return ()
    if isinstance(tokens, str):
        return tuple(w.strip() for w in tokens.split(","))
    return tuple(tokens)
