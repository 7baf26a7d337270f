"""Antonyms: ``"hot ->"`` -> ``" cold"``, from a built-in list of word pairs (both directions)."""

from __future__ import annotations

from .items import Task, TaskItem, answer_chance, few_shot_items

DESCRIPTION = "the opposite of a word (50 pairs built in, both ways): 'hot ->' -> ' cold'"

PAIRS = [
    ("hot", "cold"),
    ("big", "small"),
    ("up", "down"),
    ("good", "bad"),
    ("fast", "slow"),
    ("old", "new"),
    ("happy", "sad"),
    ("light", "dark"),
    ("high", "low"),
    ("long", "short"),
    ("open", "closed"),
    ("rich", "poor"),
    ("strong", "weak"),
    ("hard", "soft"),
    ("wet", "dry"),
    ("early", "late"),
    ("full", "empty"),
    ("thick", "thin"),
    ("heavy", "light"),
    ("true", "false"),
    ("young", "old"),
    ("clean", "dirty"),
    ("loud", "quiet"),
    ("near", "far"),
    ("right", "wrong"),
    ("win", "lose"),
    ("love", "hate"),
    ("buy", "sell"),
    ("push", "pull"),
    ("give", "take"),
    ("begin", "end"),
    ("inside", "outside"),
    ("before", "after"),
    ("above", "below"),
    ("day", "night"),
    ("black", "white"),
    ("man", "woman"),
    ("north", "south"),
    ("east", "west"),
    ("left", "right"),
    ("yes", "no"),
    ("always", "never"),
    ("first", "last"),
    ("cheap", "expensive"),
    ("safe", "dangerous"),
    ("easy", "difficult"),
    ("friend", "enemy"),
    ("question", "answer"),
    ("alive", "dead"),
    ("deep", "shallow"),
]


def pool() -> list[TaskItem]:
    """Each pair both ways, a word at most once as a prompt (the first pair that has it wins)."""
    seen, items = set(), []
    for a, b in [*PAIRS, *((b, a) for a, b in PAIRS)]:
        if a not in seen:
            seen.add(a)
            items.append(TaskItem(f"{a} ->", f" {b}"))
    return items


def antonyms_task(n: int | None = None, *, shots: int = 4, seed: int = 0) -> Task:
    """``n`` words (every one when None, in a seeded order), each after ``shots`` worked examples."""
    items = few_shot_items(pool(), n, shots, seed)
    return Task("antonyms", items, answer_chance(pool()))
