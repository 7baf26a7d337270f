"""Prompt datasets whose items know their expected answer: arithmetic, or the user's CSV/JSONL file."""

from .arithmetic import (
    MAX_DIGITS,
    OPERATIONS,
    arithmetic_task,
    check_ops,
    count_problems,
    valid_problems,
)
from .files import load_task_file
from .items import Task, TaskItem

__all__ = [
    "MAX_DIGITS",
    "OPERATIONS",
    "Task",
    "TaskItem",
    "arithmetic_task",
    "check_ops",
    "count_problems",
    "load_task_file",
    "valid_problems",
]
