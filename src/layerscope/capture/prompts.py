"""What the capture engine runs: token ids of a prompt and the groups of positions to read from it.

A :class:`CapturePrompt` holds one sequence of token ids and one or more *groups* of positions; each
group becomes one output item (the rows at its positions pooled by the multi-token policy). This one
shape covers the last position of a prompt, every position, and the tokens of a word inside a context.

Example:
    >>> prompts_at_last([[2, 651, 1234], [2, 99]])[0].groups
    ((2,),)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import LayerscopeError, choices_text

POSITION_MODES = ("last", "all")


@dataclass(frozen=True)
class CapturePrompt:
    """One sequence to run and the groups of positions (indices into ``ids``) to read.

    Attributes:
        ids: token ids, BOS included when wanted.
        groups: each group is a tuple of positions ``0 <= p < len(ids)``; one output item per group.
    """

    ids: tuple[int, ...]
    groups: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if not self.ids:
            raise LayerscopeError("empty prompt: a prompt needs at least one token")
        for group in self.groups:
            if not group:
                raise LayerscopeError("empty group of positions: each item needs at least one position")
            bad = [p for p in group if not 0 <= p < len(self.ids)]
            if bad:
                raise LayerscopeError(
                    f"position {bad[0]} is outside a prompt of {len(self.ids)} tokens; valid: 0..{len(self.ids) - 1}"
                )

    @property
    def n_items(self) -> int:
        return len(self.groups)


def prompts_at(token_ids: Sequence[Sequence[int]], positions: str | Sequence[Sequence[int]]) -> list[CapturePrompt]:
    """Prompts reading ``"last"`` (one item per prompt), ``"all"`` (one item per token) or explicit groups.

    Explicit ``positions`` give one list of positions per prompt (negative counts from the end); each
    list is one item whose rows are pooled.
    """
    if isinstance(positions, str):
        if positions == "last":
            return [CapturePrompt(tuple(ids), ((len(ids) - 1,),)) for ids in token_ids]
        if positions == "all":
            return [CapturePrompt(tuple(ids), tuple((p,) for p in range(len(ids)))) for ids in token_ids]
        raise LayerscopeError(
            f"unknown positions {positions!r}; valid: {choices_text(POSITION_MODES)} or one list of positions per prompt"
        )
    if len(positions) != len(token_ids):
        raise LayerscopeError(f"{len(positions)} lists of positions for {len(token_ids)} prompts; give one per prompt")
    prompts = []
    for ids, group in zip(token_ids, positions):
        resolved = tuple(int(p) + len(ids) if int(p) < 0 else int(p) for p in group)
        prompts.append(CapturePrompt(tuple(ids), (resolved,)))
    return prompts


def prompts_at_last(token_ids: Sequence[Sequence[int]]) -> list[CapturePrompt]:
    """One item per prompt: its last token."""
    return prompts_at(token_ids, "last")
