"""Arithmetic prompts like ``"5+2="`` with their answers (seed 001's dataset, generalized).

Operands have exactly ``digits`` digits (1: 0-9, 2: 10-99, 3: 100-999). Every valid problem of each
operation is enumerated with numpy, then items are drawn with a seeded generator: the operation
uniformly at random, then a problem of that operation, without repeats unless duplicates are allowed.
"""

from __future__ import annotations

import numpy as np

from ..errors import LayerscopeError
from .items import Task, TaskItem, with_shots

OPERATIONS = "+-*/"
MAX_DIGITS = 3


def _operands(digits: int) -> np.ndarray:
    low = 0 if digits == 1 else 10 ** (digits - 1)
    return np.arange(low, 10**digits, dtype=np.int64)


def valid_problems(op: str, digits: int, *, non_negative: bool = True, exact_division: bool = True) -> np.ndarray:
    """All ``(a, b, result)`` rows for ``a op b`` with ``digits``-digit operands, shape ``(count, 3)``.

    Division never divides by zero; with ``exact_division`` only problems whose quotient is an integer
    are kept, otherwise the result is the integer quotient (``7/2`` -> ``3``). With ``non_negative``,
    subtraction keeps ``a >= b``.

    Example:
        >>> valid_problems("/", 1)[:3].tolist()
        [[0, 1, 0], [1, 1, 1], [2, 1, 2]]
    """
    values = _operands(digits)
    a, b = (grid.ravel() for grid in np.meshgrid(values, values, indexing="ij"))
    if op == "+":
        result, keep = a + b, np.ones_like(a, dtype=bool)
    elif op == "-":
        result = a - b
        keep = result >= 0 if non_negative else np.ones_like(a, dtype=bool)
    elif op == "*":
        result, keep = a * b, np.ones_like(a, dtype=bool)
    elif op == "/":
        keep = b != 0
        safe = np.where(keep, b, 1)
        result = a // safe
        if exact_division:
            keep &= a % safe == 0
    else:
        raise LayerscopeError(f"unknown operation {op!r}; valid: {', '.join(OPERATIONS)}")
    return np.stack([a[keep], b[keep], result[keep]], axis=1)


def count_problems(ops: str, digits: int, *, non_negative: bool = True, exact_division: bool = True) -> int:
    """How many distinct problems :func:`arithmetic_task` can draw from (without building the items)."""
    ops = check_ops(ops)
    return sum(len(valid_problems(op, digits, non_negative=non_negative, exact_division=exact_division)) for op in ops)


def check_ops(ops: str) -> str:
    """Validate an operations string such as ``"+-*/"``; returns its distinct operations in order."""
    bad = [c for c in ops if c not in OPERATIONS]
    if not ops or bad:
        shown = repr(bad[0]) if bad else "''"
        raise LayerscopeError(f"unknown operation {shown} in ops {ops!r}; valid: any of {OPERATIONS!r}")
    return "".join(dict.fromkeys(ops))


def arithmetic_task(
    n: int | None = 1000,
    *,
    ops: str = OPERATIONS,
    digits: int = 1,
    seed: int = 0,
    non_negative: bool = True,
    exact_division: bool = True,
    duplicates: bool = False,
    shots: int = 0,
) -> Task:
    """``n`` arithmetic prompts ``"{a}{op}{b}="`` with the answer ``str(result)``; group = the operation.

    Args:
        n: number of items; ``None`` takes every distinct problem (in a seeded random order).
        ops: operations to draw from, any of ``"+-*/"``.
        digits: digits per operand, 1 to 3.
        seed: seed of the random generator (same arguments, same items).
        non_negative: keep ``a - b`` only when ``a >= b``.
        exact_division: keep ``a / b`` only when ``b`` divides ``a``; otherwise the answer is ``a // b``.
        duplicates: allow a problem to appear several times (needed when ``n`` exceeds the distinct count).
        shots: worked examples before each prompt (``"3+4=7\\n5+2="``): other problems of the same operation,
            drawn with ``default_rng([seed, 1])`` (the problems themselves do not depend on ``shots``).

    The task's ``chance`` is a uniform guess among the distinct results of the item's operation, averaged
    over the items.

    Example:
        >>> task = arithmetic_task(3, ops="+", seed=1)
        >>> [(i.prompt, i.answer) for i in task.items]    # doctest: +SKIP
        [('3+8=', '11'), ('0+4=', '4'), ('9+9=', '18')]
    """
    ops = check_ops(ops)
    if digits not in range(1, MAX_DIGITS + 1):
        raise LayerscopeError(f"digits {digits} is not supported; valid: 1 to {MAX_DIGITS}")
    pools = {op: valid_problems(op, digits, non_negative=non_negative, exact_division=exact_division) for op in ops}
    total = sum(len(p) for p in pools.values())
    if n is None:
        n = total
    if n < 1:
        raise LayerscopeError(f"n {n} must be at least 1")
    if n > total and not duplicates:
        raise LayerscopeError(
            f"n {n} exceeds the {total} distinct problems for ops {ops!r} with {digits}-digit operands; "
            "lower n or allow duplicates (duplicates=True)"
        )
    rng = np.random.default_rng(seed)
    rows = _draw_with_repeats(pools, n, rng) if duplicates else _draw_distinct(pools, n, rng)
    items = [TaskItem(f"{a}{op}{b}=", str(result), op) for op, (a, b, result) in rows]
    if shots:
        items = _with_demos(items, pools, shots, np.random.default_rng([seed, 1]))
    distinct = {op: len(np.unique(pool[:, 2])) for op, pool in pools.items()}
    chance = float(np.mean([1.0 / distinct[item.group] for item in items]))
    return Task(f"arithmetic {ops} {digits}-digit", items, chance)


def _with_demos(items: list[TaskItem], pools: dict[str, np.ndarray], shots: int, rng) -> list[TaskItem]:
    out = []
    for item in items:
        pool = pools[item.group]
        demos: list[TaskItem] = []
        while len(demos) < shots:
            if len(pool) <= shots:
                raise LayerscopeError(f"shots {shots} exceeds the other {item.group!r} problems available")
            a, b, result = pool[rng.integers(len(pool))].tolist()
            demo = TaskItem(f"{a}{item.group}{b}=", str(result), item.group)
            if demo.prompt != item.prompt and demo not in demos:
                demos.append(demo)
        out.append(with_shots(item, demos))
    return out


def _draw_with_repeats(pools: dict[str, np.ndarray], n: int, rng: np.random.Generator) -> list:
    ops = list(pools)
    choice = rng.integers(len(ops), size=n)
    rows = []
    for k in choice:
        pool = pools[ops[k]]
        rows.append((ops[k], pool[rng.integers(len(pool))].tolist()))
    return rows


def _draw_distinct(pools: dict[str, np.ndarray], n: int, rng: np.random.Generator) -> list:
    order = {op: rng.permutation(len(pool)) for op, pool in pools.items()}
    used = dict.fromkeys(pools, 0)
    rows = []
    for _ in range(n):
        open_ops = [op for op in pools if used[op] < len(pools[op])]
        op = open_ops[int(rng.integers(len(open_ops)))]
        rows.append((op, pools[op][order[op][used[op]]].tolist()))
        used[op] += 1
    return rows
