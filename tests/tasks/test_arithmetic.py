"""The arithmetic generator: right answers, options honoured, no repeats unless asked."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from layerscope.errors import LayerscopeError
from layerscope.tasks import arithmetic_task, count_problems, valid_problems

PROMPT = re.compile(r"^(\d+)([-+*/])(\d+)=$")


def solve(prompt: str) -> tuple[int, str, int]:
    a, op, b = PROMPT.match(prompt).groups()
    return int(a), op, int(b)


@pytest.mark.parametrize("digits", [1, 2, 3])
def test_answers_are_right(digits):
    task = arithmetic_task(250, digits=digits, seed=digits)
    for item in task.items:
        a, op, b = solve(item.prompt)
        assert item.group == op
        assert len(str(a)) == digits and len(str(b)) == digits
        value = {"+": a + b, "-": a - b, "*": a * b, "/": a // b if b else None}[op]
        assert item.answer == str(value)
        if op == "/":
            assert a % b == 0  # exact division by default
        if op == "-":
            assert a >= b  # non-negative by default


def test_inexact_division_and_negative_results_only_when_asked():
    task = arithmetic_task(150, ops="/-", seed=0, exact_division=False, non_negative=False)
    division = [solve(i.prompt) for i in task.items if i.group == "/"]
    assert any(a % b for a, _, b in division)
    assert all(i.answer == str(solve(i.prompt)[0] // solve(i.prompt)[2]) for i in task.items if i.group == "/")
    assert any(i.answer.startswith("-") for i in task.items if i.group == "-")
    assert all(b != 0 for _, _, b in division)


def test_no_duplicates_unless_asked():
    distinct = arithmetic_task(None)
    assert len(distinct) == 100 + 55 + 100 + 32  # every 1-digit problem: + - * and exact /
    assert len({i.prompt for i in distinct.items}) == len(distinct)
    assert Counter(i.group for i in distinct.items) == {"+": 100, "-": 55, "*": 100, "/": 32}
    with pytest.raises(LayerscopeError, match=r"n 1000 exceeds the 287 distinct problems"):
        arithmetic_task(1000)
    repeated = arithmetic_task(1000, duplicates=True)
    assert len(repeated) == 1000 and len({i.prompt for i in repeated.items}) < 1000


def test_seeded_and_mixed():
    assert arithmetic_task(50, seed=7).items == arithmetic_task(50, seed=7).items
    assert arithmetic_task(50, seed=7).items != arithmetic_task(50, seed=8).items
    assert set(arithmetic_task(200).groups) == set("+-*/")
    assert arithmetic_task(5, ops="+").groups == ["+"]


def test_valid_problems_counts():
    assert len(valid_problems("/", 1)) == 32
    assert len(valid_problems("/", 1, exact_division=False)) == 90
    assert len(valid_problems("-", 2)) == 90 * 91 // 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"ops": "+^"}, r"unknown operation '\^'"),
        ({"ops": ""}, "unknown operation"),
        ({"digits": 4}, "digits 4"),
        ({"n": 0}, "n 0 must be at least 1"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(LayerscopeError, match=message):
        arithmetic_task(**{"n": 5, **kwargs})


@pytest.mark.parametrize(
    "ops, digits, non_negative, exact_division", [("+-*/", 1, True, True), ("-/", 2, False, False)]
)
def test_count_problems_is_the_number_of_distinct_items(ops, digits, non_negative, exact_division):
    options = {"non_negative": non_negative, "exact_division": exact_division}
    every = arithmetic_task(None, ops=ops, digits=digits, **options)
    assert count_problems(ops, digits, **options) == len(every) == len({i.prompt for i in every.items})
