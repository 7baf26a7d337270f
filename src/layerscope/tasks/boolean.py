"""Boolean logic: ``"True and not False ="`` -> ``" True"``.

Every expression of two or three operands (``True``/``False``, each possibly negated with ``not``) joined by
``and``/``or`` is in the pool (288 of them). Python's precedence holds: ``not`` binds tightest, then ``and``,
then ``or``; the answer is computed from that rule here, with no ``eval``. Group: the operators used
(``and``, ``or``, ``and+or``).
"""

from __future__ import annotations

import itertools

from .items import Task, TaskItem, few_shot_items

DESCRIPTION = "Boolean logic with and/or/not, Python's precedence: 'True and not False =' -> ' True'"
CHANCE = 0.5  # two possible answers


def _value(negated: bool, value: bool) -> bool:
    return (not value) if negated else value


def evaluate(operands: list[tuple[bool, bool]], operators: list[str]) -> bool:
    """``operands`` as ``(negated, value)``; ``and`` before ``or``: the or of the and-chains."""
    chains = [[_value(*operands[0])]]
    for operator, operand in zip(operators, operands[1:]):
        if operator == "and":
            chains[-1].append(_value(*operand))
        else:
            chains.append([_value(*operand)])
    return any(all(chain) for chain in chains)


def _text(operands: list[tuple[bool, bool]], operators: list[str]) -> str:
    words = [("not " if negated else "") + str(value) for negated, value in operands]
    return " ".join([words[0], *itertools.chain.from_iterable(zip(operators, words[1:]))])


def pool() -> list[TaskItem]:
    """Every expression of 2 or 3 operands, in a fixed order."""
    items = []
    for size in (2, 3):
        for operands in itertools.product(itertools.product((False, True), repeat=2), repeat=size):
            for operators in itertools.product(("and", "or"), repeat=size - 1):
                group = "+".join(sorted(set(operators)))
                answer = evaluate(list(operands), list(operators))
                items.append(TaskItem(_text(list(operands), list(operators)) + " =", f" {answer}", group))
    return items


def boolean_task(n: int | None = 200, *, shots: int = 8, seed: int = 0) -> Task:
    """``n`` distinct expressions (every one when None), each after ``shots`` worked examples of its group."""
    return Task("boolean", few_shot_items(pool(), n, shots, seed), CHANCE)
