"""Copying / induction: a random sequence of letters, then its start again: ``"a b c d a b c"`` -> ``" d"``.

Each item is ``length`` distinct lowercase letters (4 to 8, the group ``length 5``) written with spaces, then
the same letters again without the last one; the answer is the last letter. The items are distinct, drawn
with a seeded generator. Chance: a uniform guess among the sequence's own letters (``1 / length``),
averaged over the items.
"""

from __future__ import annotations

import numpy as np

from ..errors import LayerscopeError
from .items import Task, TaskItem, with_shots

DESCRIPTION = "continue a repeated random letter sequence (induction): 'a b c d a b c' -> ' d'"
ALPHABET = "abcdefghijklmnopqrstuvwxyz"
LENGTHS = range(4, 9)
MAX_N = 10_000


def _sequence(rng: np.random.Generator) -> TaskItem:
    length = int(rng.integers(LENGTHS.start, LENGTHS.stop))
    letters = [ALPHABET[k] for k in rng.permutation(len(ALPHABET))[:length]]
    prompt = " ".join(letters + letters[:-1])
    return TaskItem(prompt, " " + letters[-1], f"length {length}")


def copying_task(n: int | None = 200, *, shots: int = 0, seed: int = 0) -> Task:
    """``n`` distinct sequences (200 when None), each after ``shots`` other sequences written out in full."""
    n = 200 if n is None else n
    if not 1 <= n <= MAX_N:
        raise LayerscopeError(f"n {n} is not supported; valid: 1 to {MAX_N}")
    rng = np.random.default_rng(seed)
    queries: dict[str, TaskItem] = {}
    while len(queries) < n:
        item = _sequence(rng)
        queries.setdefault(item.prompt, item)
    demo_rng = np.random.default_rng([seed, 1])
    items = [with_shots(q, [_sequence(demo_rng) for _ in range(shots)]) for q in queries.values()]
    chance = float(np.mean([1.0 / int(item.group.split()[1]) for item in items]))
    return Task("copying", items, chance)
