"""Words to token ids, with an explicit policy for words that split into several tokens."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import LayerscopeError, choices_text

MULTI_TOKEN_POLICIES = ("mean", "first", "last")


@dataclass(frozen=True)
class TokenItem:
    """One word of one set, as the tokenizer sees it.

    Attributes:
        set: the set's name (``"digits"``).
        label: the word as the user wrote it (``"January"``).
        text: the string tokenized (``" January"`` with the leading-space option).
        token_ids: its token ids, without any BOS.
    """

    set: str
    label: str
    text: str
    token_ids: tuple[int, ...]

    @property
    def is_split(self) -> bool:
        return len(self.token_ids) > 1


def check_policy(policy: str) -> str:
    if policy not in MULTI_TOKEN_POLICIES:
        raise LayerscopeError(f"unknown multi-token policy {policy!r}; valid: {choices_text(MULTI_TOKEN_POLICIES)}")
    return policy


def encode_sets(
    tokenizer, sets: dict[str, list[str]], *, leading_space: bool = False, warn: bool = True
) -> list[TokenItem]:
    """Tokenize every word of every set (no special tokens).

    A word that gives no token, or the unknown token, is an error naming the word. Words that split
    into several tokens are kept and listed in one warning.

    Example:
        >>> items = encode_sets(model.tokenizer, {"digits": list("0123456789")})
        >>> [len(i.token_ids) for i in items] == [1] * 10
        True
    """
    unk = getattr(tokenizer, "unk_token_id", None)
    items: list[TokenItem] = []
    for set_name, words in sets.items():
        if not words:
            raise LayerscopeError(f"token set {set_name!r} is empty; give at least one word")
        for word in words:
            text = (" " + word) if leading_space and not word.startswith(" ") else word
            ids = tuple(int(i) for i in tokenizer(text, add_special_tokens=False)["input_ids"])
            if not ids:
                raise LayerscopeError(f"word {word!r} in set {set_name!r} encodes to no token; give a non-empty word")
            if unk is not None and unk in ids:
                raise LayerscopeError(
                    f"word {word!r} in set {set_name!r} contains characters the tokenizer cannot encode (unknown token)"
                )
            items.append(TokenItem(set=set_name, label=word, text=text, token_ids=ids))
    split = [item for item in items if item.is_split]
    if split and warn:
        listed = ", ".join(f"{i.label!r} ({len(i.token_ids)} tokens)" for i in split[:12])
        more = f" and {len(split) - 12} more" if len(split) > 12 else ""
        warnings.warn(f"{len(split)} words split into several tokens: {listed}{more}", stacklevel=2)
    return items


def pool_rows(rows: np.ndarray, policy: str) -> np.ndarray:
    """Reduce the rows of one word's tokens, shape ``(n_tokens, d)``, to one vector ``(d,)``."""
    check_policy(policy)
    if policy == "first":
        return rows[0]
    if policy == "last":
        return rows[-1]
    return rows.mean(axis=0)
