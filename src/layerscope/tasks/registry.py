"""The built-in tasks by name: what each asks, its default number of worked examples, its chance level and its
measured baseline on the default model.

``BASELINES`` were measured with ``layerscope ablate --task NAME`` at the defaults (seed 0, every item or
the default ``n``) on the default model (Gemma 3 270M, the embedded GGUF) and are rechecked by
``tests/tasks/test_registry.py`` (a few of them, on the default model). ``layerscope tasks`` prints them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import LayerscopeError
from . import antonyms, boolean, capitals, copying, sequences
from .arithmetic import arithmetic_task
from .items import Task


@dataclass(frozen=True)
class Baseline:
    """Accuracy of the unablated default model at the task's defaults, with the scoring it was measured with."""

    accuracy: float
    n: int
    scoring: str
    chance: float


@dataclass(frozen=True)
class BuiltinTask:
    """One built-in task.

    Attributes:
        name: what ``--task`` takes.
        description: one line, with an example prompt and answer.
        shots: the default number of worked examples before each prompt.
        build: ``build(n, shots, seed) -> Task`` (``n`` None: the task's default number of items).
        baseline: the measured baseline on the default model at the defaults.
    """

    name: str
    description: str
    shots: int
    build: Callable[[int | None, int, int], Task]

    @property
    def baseline(self) -> Baseline | None:
        return BASELINES.get(self.name)

    def task(self, n: int | None = None, shots: int | None = None, seed: int = 0) -> Task:
        return self.build(n, self.shots if shots is None else shots, seed)


def _arithmetic(n, shots, seed):
    return arithmetic_task(n, shots=shots, seed=seed)  # n None: every distinct problem (287)


# Measured on the default model (gemma-3-270m-q4_k_m, CPU, float32), seed 0, default n and shots, each task's
# default scoring: "answer" where some answer has several tokens, else "first" (the same verdicts then).
# Chance: a uniform guess among the answers an item could have, averaged over the items.
BASELINES = {
    "arithmetic": Baseline(accuracy=115 / 287, n=287, scoring="answer", chance=0.0581),  # first token: 0.516
    "boolean": Baseline(accuracy=133 / 200, n=200, scoring="first", chance=0.5),  # 4 shots 0.625, 16 shots 0.695
    "successor": Baseline(accuracy=105 / 143, n=143, scoring="answer", chance=0.0276),
    "predecessor": Baseline(accuracy=59 / 143, n=143, scoring="answer", chance=0.0276),  # first token: 0.713
    "capitals": Baseline(accuracy=52 / 60, n=60, scoring="answer", chance=0.0167),  # 0 shots: 0.217 (" the")
    "copying": Baseline(accuracy=189 / 200, n=200, scoring="first", chance=0.1745),
    "antonyms": Baseline(accuracy=75 / 97, n=97, scoring="first", chance=0.0106),
}

TASKS: dict[str, BuiltinTask] = {
    t.name: t
    for t in [
        BuiltinTask(
            "arithmetic",
            "1-digit + - * / problems, seed 001's task ('--ops', '--digits' for more): '5+2=' -> '7'",
            0,
            _arithmetic,
        ),
        BuiltinTask(
            "boolean",
            boolean.DESCRIPTION,
            8,
            lambda n, shots, seed: boolean.boolean_task(n or 200, shots=shots, seed=seed),
        ),
        BuiltinTask(
            "successor",
            sequences.DESCRIPTIONS["successor"],
            4,
            lambda n, shots, seed: sequences.sequence_task("successor", n, shots=shots, seed=seed),
        ),
        BuiltinTask(
            "predecessor",
            sequences.DESCRIPTIONS["predecessor"],
            4,
            lambda n, shots, seed: sequences.sequence_task("predecessor", n, shots=shots, seed=seed),
        ),
        BuiltinTask(
            "capitals",
            capitals.DESCRIPTION,
            3,
            lambda n, shots, seed: capitals.capitals_task(n, shots=shots, seed=seed),
        ),
        BuiltinTask(
            "copying",
            copying.DESCRIPTION,
            0,
            lambda n, shots, seed: copying.copying_task(n, shots=shots, seed=seed),
        ),
        BuiltinTask(
            "antonyms",
            antonyms.DESCRIPTION,
            4,
            lambda n, shots, seed: antonyms.antonyms_task(n, shots=shots, seed=seed),
        ),
    ]
}


def builtin_task(name: str) -> BuiltinTask:
    """The built-in task called ``name``; a ``LayerscopeError`` listing them otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise LayerscopeError(f"unknown task {name!r}; valid: {', '.join(TASKS)} or a .csv/.jsonl file") from None


def task_rows() -> list[dict]:
    """One dict per built-in task: name, description, shots, items, chance, scoring, baseline."""
    out = []
    for spec in TASKS.values():
        task = spec.task()
        base = spec.baseline
        out.append(
            {
                "name": spec.name,
                "description": spec.description,
                "shots": spec.shots,
                "items": len(task),
                "chance": round(task.chance, 4),
                "scoring": base.scoring if base else None,
                "baseline": base.accuracy if base else None,
            }
        )
    return out


def builtin_tasks():
    """The built-in tasks as a ``pandas.DataFrame`` (what ``layerscope tasks`` prints), one row per task:
    ``name``, ``description`` (an example prompt and answer), ``shots`` (default worked examples), ``items``
    (at the defaults), ``chance``, and the ``baseline`` accuracy on the default model with its ``scoring``.
    Any ``name`` is what ``layerscope.ablate(name, ...)`` and ``--task`` take."""
    import pandas as pd

    return pd.DataFrame(task_rows()).set_index("name")
