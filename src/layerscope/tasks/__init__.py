"""Prompt datasets whose items know their expected answer: arithmetic, or the user's CSV/JSONL file."""

from .arithmetic import OPERATIONS, arithmetic_task, valid_problems
from .files import load_task_file
from .items import Task, TaskItem

__all__ = ["OPERATIONS", "Task", "TaskItem", "arithmetic_task", "load_task_file", "valid_problems"]
