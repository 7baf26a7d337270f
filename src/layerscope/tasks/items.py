"""A task: prompts, each with the answer the model should continue it with."""

from __future__ import annotations

from dataclasses import dataclass


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
    """A named list of items.

    Example:
        >>> task = Task("demo", [TaskItem("5+2=", "7", "+")])
        >>> task.groups
        ['+']
    """

    name: str
    items: list[TaskItem]

    def __len__(self) -> int:
        return len(self.items)

    @property
    def groups(self) -> list[str]:
        """The distinct non-empty groups, in order of first appearance."""
        return [g for g in dict.fromkeys(item.group for item in self.items) if g]
