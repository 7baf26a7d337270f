"""A task: prompts, each with the answer the model should continue it with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import LayerscopeError


@dataclass(frozen=True)
class TaskItem:
    """One prompt and its expected answer.

    Attributes:
        prompt: the text fed to the model, e.g. ``"5+2="``.
        answer: the expected continuation, e.g. ``"7"``.
        group: a label for per-group accuracy (the operation for arithmetic, ``""`` when none).
    """

    prompt: str
    answer: str
    group: str = ""


@dataclass(frozen=True)
class Task:
    """A named list of items, with the accuracy of a uniform guess (``chance``) when it is known.

    Example:
        >>> task = Task("demo", [TaskItem("5+2=", "7", "+")])
        >>> task.groups
        ['+']
    """

    name: str
    items: list[TaskItem]
    chance: float | None = None

    def __len__(self) -> int:
        return len(self.items)

    @property
    def groups(self) -> list[str]:
        """The distinct non-empty groups, in order of first appearance."""
        return [g for g in dict.fromkeys(item.group for item in self.items) if g]


def answer_chance(items: Sequence[TaskItem]) -> float:
    """The accuracy of a uniform guess among the task's distinct answers: ``1 / distinct answers``."""
    return 1.0 / len({item.answer for item in items})


def with_shots(query: TaskItem, demos: Sequence[TaskItem], separator: str = "\n") -> TaskItem:
    """``query`` with the worked examples ``demos`` before it: ``demo.prompt + demo.answer`` each, then the query.

    Example:
        >>> with_shots(TaskItem("3+4=", "7"), [TaskItem("5+2=", "7"), TaskItem("1+1=", "2")]).prompt
        '5+2=7\\n1+1=2\\n3+4='
    """
    head = "".join(d.prompt + d.answer + separator for d in demos)
    return TaskItem(head + query.prompt, query.answer, query.group)


def few_shot_items(
    pool: Sequence[TaskItem],
    n: int | None,
    shots: int,
    seed: int,
    *,
    same_group: bool = True,
    separator: str = "\n",
) -> list[TaskItem]:
    """``n`` distinct queries drawn from ``pool`` (all of them, shuffled, when None), each preceded by ``shots``
    worked examples: other items of the pool (of the query's group with ``same_group``), drawn with the same seed.

    The queries are drawn first with ``default_rng(seed)``; the examples with ``default_rng([seed, 1])``, so
    the queries do not depend on ``shots``.
    """
    if n is None:
        n = len(pool)
    if n < 1:
        raise LayerscopeError(f"n {n} must be at least 1")
    if n > len(pool):
        raise LayerscopeError(f"n {n} exceeds the {len(pool)} distinct items of this task; lower n")
    order = np.random.default_rng(seed).permutation(len(pool))[:n]
    demo_rng = np.random.default_rng([seed, 1])
    by_group: dict[str, list[int]] = {}
    for k, item in enumerate(pool):
        by_group.setdefault(item.group if same_group else "", []).append(k)
    items = []
    for k in order.tolist():
        query = pool[k]
        others = [j for j in by_group[query.group if same_group else ""] if j != k]
        if shots > len(others):
            raise LayerscopeError(f"shots {shots} exceeds the {len(others)} other items available as examples")
        picked = demo_rng.choice(len(others), size=shots, replace=False) if shots else []
        items.append(with_shots(query, [pool[others[j]] for j in picked], separator))
    return items
