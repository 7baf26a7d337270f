"""Successor and predecessor: the next (or previous) number, letter, weekday or month.

``"after Monday: Tuesday"``, ``"before B: A"``. Numbers run 0..99, letters A..Z, weekdays Monday..Sunday
and months January..December; weekdays and months wrap around (the day after Sunday is Monday), numbers
and letters do not (no successor of 99 or Z, no predecessor of 0 or A). The group is the kind of sequence;
the worked examples before a query are of the same kind. Chance: a uniform guess among the kind's values,
averaged over the items.
"""

from __future__ import annotations

from ..tokensets.builtin import CATEGORIES
from .items import Task, TaskItem, few_shot_items

NUMBERS = [str(k) for k in range(100)]
LETTERS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = list(CATEGORIES["months"])  # the token set of the same name, in calendar order
KINDS = {
    "numbers": (NUMBERS, False),
    "letters": (LETTERS, False),
    "weekdays": (WEEKDAYS, True),
    "months": (MONTHS, True),
}
DESCRIPTIONS = {
    "successor": "the next number (0-99), letter, weekday or month: 'after Monday:' -> ' Tuesday'",
    "predecessor": "the previous number (0-99), letter, weekday or month: 'before Tuesday:' -> ' Monday'",
}
WORD = {"successor": "after", "predecessor": "before"}


def pool(direction: str) -> list[TaskItem]:
    """Every item of one direction (``successor`` or ``predecessor``), kind by kind."""
    step = 1 if direction == "successor" else -1
    items = []
    for kind, (values, wraps) in KINDS.items():
        for k, value in enumerate(values):
            j = k + step
            if not wraps and not 0 <= j < len(values):
                continue
            items.append(TaskItem(f"{WORD[direction]} {value}:", " " + values[j % len(values)], kind))
    return items


def chance(items: list[TaskItem]) -> float:
    return sum(1.0 / len(KINDS[item.group][0]) for item in items) / len(items)


def sequence_task(direction: str, n: int | None = 200, *, shots: int = 4, seed: int = 0) -> Task:
    """``n`` distinct items of ``direction`` (every one when None), each after ``shots`` examples of its kind."""
    items = few_shot_items(pool(direction), n, shots, seed)
    return Task(direction, items, chance(items))
