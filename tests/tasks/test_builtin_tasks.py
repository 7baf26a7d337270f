"""Every built-in task's answers recomputed here, independently of the generators: Python's own arithmetic and
``eval`` of Boolean expressions, ``calendar`` for weekdays and months, ``chr``/``ord`` for letters, literals
for a few capitals and antonyms; and their chance levels, worked examples and seeds."""

from __future__ import annotations

import calendar
import re

import pytest

from layerscope.errors import LayerscopeError
from layerscope.tasks import arithmetic_task
from layerscope.tasks.registry import TASKS, builtin_task

BOOLEAN = re.compile(r"^(not )?(True|False)( (and|or) (not )?(True|False))* =$")
ARITHMETIC = re.compile(r"^(\d+)([-+*/])(\d+)=$")
WEEKDAYS = list(calendar.day_name)  # Monday first
MONTHS = list(calendar.month_name)[1:]


def lines(prompt: str) -> list[str]:
    return prompt.split("\n")


def boolean_answer(expression: str) -> str:
    assert BOOLEAN.match(expression), expression  # only these words: eval is safe here
    return f" {eval(expression[:-2])}"  # noqa: S307


def arithmetic_answer(text: str) -> str:
    a, op, b = ARITHMETIC.match(text).groups()
    a, b = int(a), int(b)
    return str({"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op])


def sequence_answer(query: str, kind: str) -> str:
    word, value = re.match(r"^(after|before) (\S+):$", query).groups()
    step = 1 if word == "after" else -1
    if kind == "numbers":
        return f" {int(value) + step}"
    if kind == "letters":
        return " " + chr(ord(value) + step)
    names = WEEKDAYS if kind == "weekdays" else MONTHS
    return " " + names[(names.index(value) + step) % len(names)]


def test_the_registry_lists_every_family():
    assert list(TASKS) == ["arithmetic", "boolean", "successor", "predecessor", "capitals", "copying", "antonyms"]
    for spec in TASKS.values():
        assert spec.description and "'" in spec.description  # an example in every description
    with pytest.raises(LayerscopeError, match="unknown task 'nosuch'; valid: arithmetic, boolean"):
        builtin_task("nosuch")


@pytest.mark.parametrize("shots", [0, 3])
def test_arithmetic_answers_and_examples(shots):
    task = arithmetic_task(120, ops="+-*/", digits=2, shots=shots, seed=5)
    for item in task.items:
        *demos, query = lines(item.prompt)
        assert len(demos) == shots
        assert item.answer == arithmetic_answer(query)
        for demo in demos:
            problem, result = demo.split("=")
            assert arithmetic_answer(problem + "=") == result
            assert ARITHMETIC.match(problem + "=").group(2) == item.group and problem + "=" != query
    # The problems do not depend on the number of examples.
    plain = arithmetic_task(120, ops="+-*/", digits=2, seed=5)
    assert [lines(i.prompt)[-1] for i in task.items] == [i.prompt for i in plain.items]


@pytest.mark.parametrize("shots", [0, 4])
def test_boolean_answers(shots):
    task = builtin_task("boolean").task(n=288, shots=shots)
    assert len(task) == 2 * 4**2 + 4 * 4**3  # every expression of 2 or 3 operands
    assert len({lines(i.prompt)[-1] for i in task.items}) == len(task)
    for item in task.items:
        *demos, query = lines(item.prompt)
        assert item.answer == boolean_answer(query)
        assert len(demos) == shots
        for demo in demos:
            expression, value = demo.rsplit(" ", 1)
            assert boolean_answer(expression) == f" {value}" and expression != query
    assert task.chance == 0.5
    assert {i.answer for i in task.items} == {" True", " False"}


@pytest.mark.parametrize("name", ["successor", "predecessor"])
def test_successor_and_predecessor_answers(name):
    task = builtin_task(name).task(n=None, shots=2, seed=3)
    kinds = {"numbers": 99, "letters": 25, "weekdays": 7, "months": 12}
    assert {g: sum(i.group == g for i in task.items) for g in kinds} == kinds
    for item in task.items:
        *demos, query = lines(item.prompt)
        assert item.answer == sequence_answer(query, item.group)
        for demo in demos:
            head, value = demo.split(": ")
            assert sequence_answer(head + ":", item.group) == f" {value}"
    sizes = {"numbers": 100, "letters": 26, "weekdays": 7, "months": 12}
    assert task.chance == pytest.approx(sum(1 / sizes[i.group] for i in task.items) / len(task))
    wrap = "Sunday" if name == "successor" else "Monday"
    item = next(i for i in task.items if lines(i.prompt)[-1].endswith(f" {wrap}:"))
    assert item.answer == (" Monday" if name == "successor" else " Sunday")


def test_capitals_and_antonyms_against_literals():
    capitals = {lines(i.prompt)[-1]: i.answer for i in builtin_task("capitals").task(shots=0).items}
    expected = {"France": " Paris", "Japan": " Tokyo", "Kenya": " Nairobi", "Canada": " Ottawa", "Peru": " Lima"}
    for country, city in expected.items():
        assert capitals[f"The capital of {country} is"] == city
    antonyms = {lines(i.prompt)[-1]: i.answer for i in builtin_task("antonyms").task(shots=0).items}
    for word, opposite in {"hot": " cold", "cold": " hot", "up": " down", "night": " day", "empty": " full"}.items():
        assert antonyms[f"{word} ->"] == opposite
    task = builtin_task("capitals").task(shots=3)
    assert task.chance == pytest.approx(1 / 60)
    for item in task.items:
        *demos, query = lines(item.prompt)
        assert len(demos) == 3 and all(d.startswith("The capital of ") and not d.startswith(query) for d in demos)
        assert all(capitals[d[: d.index(" is") + 3]] == d[d.index(" is") + 3 :] for d in demos)


@pytest.mark.parametrize("shots", [0, 2])
def test_copying_answers(shots):
    task = builtin_task("copying").task(n=300, shots=shots, seed=7)
    assert len({i.prompt for i in task.items}) == 300
    lengths = []
    for item in task.items:
        *demos, query = lines(item.prompt)
        letters = query.split(" ")
        length = (len(letters) + 1) // 2
        first, again = letters[:length], letters[length:]
        assert len(set(first)) == length and again == first[:-1]
        assert item.answer == " " + first[-1] and item.group == f"length {length}"
        assert all(c.isascii() and c.islower() for c in first)
        assert len(demos) == shots
        for demo in demos:
            symbols = demo.split(" ")
            half = len(symbols) // 2
            assert symbols[:half] == symbols[half:]
        lengths.append(length)
    assert task.chance == pytest.approx(sum(1 / n for n in lengths) / len(lengths))


@pytest.mark.parametrize("name", list(TASKS))
def test_same_seed_same_items_other_seed_other_order(name):
    spec = builtin_task(name)
    a, b, c = spec.task(seed=1), spec.task(seed=1), spec.task(seed=2)
    assert a.items == b.items and a.items != c.items and len(a) >= 50


def test_too_many_items_or_examples_are_refused():
    with pytest.raises(LayerscopeError, match="n 61 exceeds the 60 distinct items"):
        builtin_task("capitals").task(n=61)
    with pytest.raises(LayerscopeError, match="shots 7 exceeds the 6 other items"):
        builtin_task("successor").task(shots=7)  # weekdays: 6 others
