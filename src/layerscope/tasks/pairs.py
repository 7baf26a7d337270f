"""Clean/corrupt prompt pairs for activation patching: built-in sets and the user's CSV/JSONL files.

A pair is two prompts that differ in a token or two, the answer the clean prompt calls for and the ``wrong``
token the corrupt one calls for instead: ``"When Mary and John went to the store, John gave a drink to"``,
``"... Mary gave ..."``, ``" Mary"``, ``" John"``. Built-in sets (:data:`PAIR_SETS`):

- ``names``: indirect objects in four templates and twelve names (the clean prompt repeats the second name,
  the corrupt one the first, so the answer swaps);
- ``capitals``: ``"The capital of France is"`` / ``"... Italy is"``, ``" Paris"`` / ``" Rome"``;
- ``arithmetic``: one-digit sums and differences with one operand changed, after two worked examples
  (``"2+3=5\\n1+4=5\\n3+4="`` / ``"...3+5="``, ``"7"`` / ``"8"``), every answer one digit;
- ``successor``: the next weekday, month, letter or number after two examples of its kind
  (``"after Monday:"`` / ``"after Thursday:"``, ``" Tuesday"`` / ``" Friday"``).

A file (``.csv`` with a header, or ``.jsonl``) gives ``clean, corrupt, answer, wrong`` per row, read through
:mod:`layerscope.user_files` (bounded, regular files only). Which pairs a model can use (one length, one-token
answers) is decided where its tokenizer is known (:mod:`layerscope.experiments.patch`).

Example:
    >>> pairs = pair_set("capitals", n=4, seed=0)
    >>> pairs[0].clean, pairs[0].answer                            # doctest: +SKIP
    ('The capital of Spain is', ' Madrid')
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from pathlib import Path

from ..errors import LayerscopeError
from ..user_files import read_user_text
from .capitals import CAPITALS
from .files import read_records
from .sequences import KINDS

COLUMNS = ("clean", "corrupt", "answer", "wrong")
SUFFIXES = (".csv", ".jsonl")


@dataclass(frozen=True)
class Pair:
    """One clean/corrupt pair (texts, as given)."""

    clean: str
    corrupt: str
    answer: str
    wrong: str

    def label(self) -> str:
        return f"({self.clean!r}, {self.corrupt!r})"


NAMES = ("Mary", "John", "Tom", "Anna", "James", "Sarah", "David", "Emma", "Paul", "Lisa", "Mark", "Kate")
TEMPLATES = (
    "When {a} and {b} went to the store, {s} gave a drink to",
    "When {a} and {b} went to the park, {s} gave a ball to",
    "After {a} and {b} had lunch, {s} handed the bill to",
    "While {a} and {b} were at the office, {s} sent an email to",
)


def _names() -> list[Pair]:
    pairs = []
    for template in TEMPLATES:
        for a, b in itertools.permutations(NAMES, 2):
            clean = template.format(a=a, b=b, s=b)  # the second name repeated: the answer is the first
            corrupt = template.format(a=a, b=b, s=a)
            pairs.append(Pair(clean, corrupt, " " + a, " " + b))
    return pairs


def _capitals() -> list[Pair]:
    countries = list(CAPITALS)
    return [
        Pair(f"The capital of {x} is", f"The capital of {y} is", " " + CAPITALS[x], " " + CAPITALS[y])
        for x, y in itertools.permutations(countries, 2)
    ]


ARITHMETIC_SHOTS = "2+3=5\n1+4=5\n"


def _arithmetic() -> list[Pair]:
    pairs = []
    for op, result in (("+", lambda a, b: a + b), ("-", lambda a, b: a - b)):
        for a, b, c in itertools.product(range(10), repeat=3):
            x, y = result(a, b), result(a, c)
            if b != c and 0 <= x <= 9 and 0 <= y <= 9:
                pairs.append(Pair(f"{ARITHMETIC_SHOTS}{a}{op}{b}=", f"{ARITHMETIC_SHOTS}{a}{op}{c}=", str(x), str(y)))
    return pairs


def _successor() -> list[Pair]:
    pairs = []
    for values, wraps in KINDS.values():
        last = len(values) if wraps else len(values) - 1
        shots = f"after {values[0]}: {values[1]}\nafter {values[1]}: {values[2]}\n"
        for i, j in itertools.permutations(range(2, last), 2):
            pairs.append(
                Pair(
                    f"{shots}after {values[i]}:",
                    f"{shots}after {values[j]}:",
                    " " + values[(i + 1) % len(values)],
                    " " + values[(j + 1) % len(values)],
                )
            )
    return pairs


PAIR_SETS = {"names": _names, "capitals": _capitals, "arithmetic": _arithmetic, "successor": _successor}


def pair_set(name: str, n: int | None = None, seed: int = 0) -> list[Pair]:
    """Every pair of a built-in set in a seeded order (the first ``n`` when given)."""
    if name not in PAIR_SETS:
        raise LayerscopeError(f"unknown pair set {name!r}; valid: {', '.join(PAIR_SETS)} or a .csv/.jsonl file")
    pairs = PAIR_SETS[name]()
    random.Random(seed).shuffle(pairs)
    return pairs if n is None else pairs[:n]


def is_pair_file(value: str) -> bool:
    return value not in PAIR_SETS


def load_pair_file(path: str | Path) -> list[Pair]:
    """The pairs of a ``.csv`` (header ``clean,corrupt,answer,wrong``) or ``.jsonl`` file, each value verbatim."""
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise LayerscopeError(
            f"pairs {str(path)!r} is neither a built-in set ({', '.join(PAIR_SETS)}) nor a .csv/.jsonl file"
        )
    text = read_user_text(path, "pairs file")
    if not text.strip():
        raise LayerscopeError(f"pairs file {str(path)!r} is empty; it needs columns {', '.join(COLUMNS)}")
    records = read_records(path, text, COLUMNS, "pairs")
    if not records:
        raise LayerscopeError(f"pairs file {str(path)!r} has no pairs")
    return [_pair(record, where, path) for where, record in records]


def _pair(record: dict, where: str, path: Path) -> Pair:
    values = {}
    for key in COLUMNS:
        value = record[key]
        if not isinstance(value, str) or value == "":
            raise LayerscopeError(f"{str(path)!r} {where}: {key} {value!r} must be a non-empty string")
        values[key] = value
    return Pair(**values)
