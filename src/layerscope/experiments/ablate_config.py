"""The config of ``layerscope ablate`` (:func:`layerscope.ablate`), declared apart from the experiment.

Importing this module imports no torch, transformers or pandas: the command line builds its options from it, and
``--help`` or a bad value answers before any model code loads. ``run`` imports the experiment itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..checkpoints.layout import model_depth
from ..errors import LayerscopeError, choices_text
from ..experiment import ExperimentConfig, option
from ..model_spec import ModelSpec
from ..tasks import (
    MAX_DIGITS,
    OPERATIONS,
    Task,
    arithmetic_task,
    check_ops,
    count_problems,
    load_task_file,
)
from ..tasks.items import answer_chance
from ..tasks.registry import TASKS, builtin_task

if TYPE_CHECKING:  # pragma: no cover
    from .ablate import AblateResult


_SPEC = re.compile(r"^\d+(-\d+)?$")


SCORINGS = ("first", "answer")


SCORING_ALIASES = {"greedy": "answer"}  # the earlier name of "answer"


SCORING_TEXT = {"first": "first scoring: the first answer token", "answer": "answer scoring: the whole answer, greedy"}


ALL_DISTINCT_CAP = 1000  # arithmetic with n=None: every distinct problem, at most this many


PART_CHOICES = ("block", "attn", "mlp", "all")  # "all": block, attn and mlp


def parse_parts(value) -> tuple[str, ...]:
    """``"attn"`` -> ``("attn",)``; ``"attn,mlp"`` -> ``("attn", "mlp")``; ``"all"`` -> ``("block", "attn", "mlp")``.

    Repeats are dropped; unknown names are kept for the config's validation to name.
    """
    pieces = str(value).split(",") if isinstance(value, str) else [str(v) for v in value]
    parts: list[str] = []
    for piece in (p.strip() for p in pieces):
        parts.extend(("block", "attn", "mlp") if piece == "all" else [piece])
    return tuple(dict.fromkeys(parts))


@dataclass(frozen=True, kw_only=True)
class AblateConfig(ExperimentConfig):
    """What ``layerscope ablate`` runs.

    Attributes:
        model: which model (default: the embedded Gemma 3 270M).
        task: a built-in task (``arithmetic``, ``boolean``, ``successor``, ``predecessor``, ``capitals``,
            ``copying``, ``antonyms``; ``layerscope tasks`` lists them) or a ``.csv``/``.jsonl`` file with
            ``prompt`` and ``answer`` (and ``group``) columns.
        n: items (arithmetic default: every distinct problem, at most 1000; another built-in task: its
            default; a file: all its rows).
        shots: worked examples before each prompt of a built-in task (None: the task's default).
        ops, digits, allow_negative, inexact_division, duplicates: the arithmetic generator's options.
        seed: the generator's seed (built-in tasks) and the bootstrap's.
        drop: sets of decoder blocks removed together, as specs (``"4"``, ``"4,5"``, ``"2-5"``); empty: each
            block alone.
        part: what is removed of those blocks: ``"block"`` (the whole block), ``"attn"`` or ``"mlp"`` (only
            its attention or MLP contribution to the residual stream); several (``"attn,mlp"``, ``"all"``) sweep
            each set once per part.
        scoring: ``"first"`` (the answer's first token) or ``"answer"`` (the whole answer under greedy decoding;
            ``"greedy"`` is the same); None: ``"answer"`` when some answer has several tokens, else ``"first"``.
        batch_size: prompts per forward pass.
        resume_dir: Python only: the run directory whose ``parts/`` keeps finished configurations (None:
            nothing kept). :func:`ablate` and the command set it to the output directory.
    """

    experiment = "ablate"

    model: ModelSpec = option(ModelSpec(), flag="--model")
    task: str = option(
        "arithmetic",
        metavar="NAME|FILE",
        help="a built-in task (arithmetic, boolean, successor, predecessor, capitals, copying, antonyms; "
        "'layerscope tasks' lists them) or a .csv/.jsonl file with prompt and answer (and group)",
    )
    n: int | None = option(
        None,
        minimum=1,
        help="number of items (arithmetic default: every distinct problem, at most 1000; other built-in "
        "tasks: their default; a file: all its rows)",
    )
    shots: int | None = option(
        None,
        minimum=0,
        metavar="K",
        help="worked examples before each prompt of a built-in task (default: the task's own)",
    )
    ops: str = option(OPERATIONS, help="arithmetic operations (default '+-*/')")
    digits: int = option(1, minimum=1, maximum=MAX_DIGITS, help="digits per arithmetic operand, 1 to 3 (default 1)")
    allow_negative: bool = option(False, help="allow negative subtraction results")
    inexact_division: bool = option(False, help="allow division with a remainder (the answer is the integer quotient)")
    duplicates: bool = option(False, help="allow a problem to appear more than once")
    seed: int = option(0, minimum=0, help="seed of the task generator and of the bootstrap intervals (default 0)")
    drop: tuple[str, ...] = option(
        (),
        metavar="LAYERS",
        help="decoder blocks removed together (block k outputs the layer named k), e.g. 4 or 4,5 or 2-5; "
        "repeatable (default: each block alone)",
    )
    part: tuple[str, ...] = option(
        ("block",),
        join=",",
        metavar="block|attn|mlp|all",
        help="what is removed of each block: block (default), attn or mlp (only its attention or MLP contribution "
        "to the residual stream, post-norms included); several, e.g. attn,mlp or all, give one curve per part",
    )
    scoring: Literal["first", "answer", "greedy"] | None = option(
        None,
        help="first: the answer's first token; answer: the whole answer under greedy decoding ('greedy' is the "
        "same); default: answer when some answer has several tokens, else first",
    )
    batch_size: int = option(64, minimum=1, help="prompts per forward pass (default 64)")
    resume_dir: str | None = option(None, flag="")

    def __post_init__(self) -> None:
        if isinstance(self.drop, str):
            object.__setattr__(self, "drop", (self.drop,))
        elif not isinstance(self.drop, tuple):
            object.__setattr__(self, "drop", tuple(self.drop))
        object.__setattr__(self, "part", parse_parts(self.part))
        if isinstance(self.task, os.PathLike):
            object.__setattr__(self, "task", os.fspath(self.task))
        if isinstance(self.resume_dir, os.PathLike):
            object.__setattr__(self, "resume_dir", os.fspath(self.resume_dir))

    # ----- validation (no model) -------------------------------------------------------------------
    def validate(self) -> None:
        super().validate()
        if self.seed >= 2**63:
            raise self.error("seed", self.seed, "must be a whole number from 0 to 2**63 - 1")
        if self.shots is not None and self.is_file():
            raise self.error("shots", self.shots, "applies to the built-in tasks only, not to a task file")
        if not self.ops:
            raise self.error("ops", self.ops, f"is empty; valid: any of {OPERATIONS!r}")
        bad_ops = [c for c in self.ops if c not in OPERATIONS]
        if bad_ops:
            raise self.error("ops", self.ops, f"has unknown operation {bad_ops[0]!r}; valid: any of {OPERATIONS!r}")
        for part in self.part or ("",):
            if part not in PART_CHOICES:
                problem = f"names unknown part {part!r}; valid: {choices_text(PART_CHOICES)}"
                raise self.error("part", ",".join(self.part), problem)
        for spec in self.drop:
            try:
                parse_drop(spec)
            except LayerscopeError as exc:
                raise self.error("drop", spec, str(exc)) from None
        depth = model_depth(self.model.source) if self.drop else None
        if depth:  # a block the model lacks, found from its config or header before it loads
            self.configurations(depth)
        if self.task == "arithmetic":
            total = self.distinct_problems()
            if self.n is not None and self.n > total and not self.duplicates:
                raise self.error(
                    "n",
                    self.n,
                    f"exceeds the {total} distinct problems for ops {check_ops(self.ops)!r} with "
                    f"{self.digits}-digit operands; lower it or allow duplicates",
                )
        elif self.is_file():
            with self.checking("task"):
                load_task_file(self.task)
        else:
            with self.checking("task"):
                self.build_task()  # the generator's own checks (n, shots)

    def is_file(self) -> bool:
        """Whether ``task`` names a file rather than a built-in task."""
        return self.task not in TASKS and (self.task.lower().endswith((".csv", ".jsonl")) or os.sep in self.task)

    def distinct_problems(self) -> int:
        return count_problems(
            self.ops, self.digits, non_negative=not self.allow_negative, exact_division=not self.inexact_division
        )

    # ----- the work --------------------------------------------------------------------------------
    def build_task(self) -> Task:
        """The task's items: a built-in task's (arithmetic with its options), or the task file's (cut to ``n``)."""
        if self.task == "arithmetic":
            n = self.n if self.n is not None else min(ALL_DISTINCT_CAP, self.distinct_problems())
            return arithmetic_task(
                n,
                ops=self.ops,
                digits=self.digits,
                seed=self.seed,
                non_negative=not self.allow_negative,
                exact_division=not self.inexact_division,
                duplicates=self.duplicates,
                shots=self.shots or 0,
            )
        if not self.is_file():
            return builtin_task(self.task).task(self.n, self.shots, self.seed)
        task = load_task_file(self.task)
        items = task.items if self.n is None else task.items[: self.n]
        return Task(task.name, items, answer_chance(items))

    def configurations(self, n_layers: int) -> list[tuple[int, ...]]:
        """The baseline ``()`` followed by each requested set of removed blocks (each block alone by default).

        A block the model lacks raises a :class:`~layerscope.experiment.ConfigError` naming ``drop``.
        """
        sets = []
        for spec in self.drop:
            removed = parse_drop(spec)
            bad = [k for k in removed if k >= n_layers]
            if bad:
                raise self.error(
                    "drop",
                    spec,
                    f"names block {bad[0]}, which does not exist; valid: 0 to {n_layers - 1} ({n_layers} blocks)",
                )
            sets.append(removed)
        sets = sets or [(k,) for k in range(n_layers)]
        return [()] + [s for s in dict.fromkeys(sets) if s]

    def ablations(self, n_layers: int) -> list[tuple[str, tuple[int, ...]]]:
        """``(part, removed)`` per configuration: the baseline ``("block", ())``, then each set once per part."""
        sets = self.configurations(n_layers)
        return [("block", ())] + [(part, s) for part in self.part for s in sets if s]

    def identity(self) -> dict:
        """The settings that decide the results (for ``parts/identity.json``): not the model's source (its
        fingerprint is compared instead), the batch size or the directory."""
        record = self.to_record()
        for key in ("model", "batch_size", "resume_dir"):
            record.pop(key, None)
        if tuple(record.get("part", ())) == ("block",):
            record.pop("part")  # as recorded before parts existed: such runs still resume
        return record

    def run(self, model=None) -> AblateResult:
        from .ablate import run_ablate  # the experiment itself, with its heavy imports: only when it runs

        return run_ablate(self, model)


def parse_drop(spec: str) -> tuple[int, ...]:
    """``"4"`` -> ``(4,)``; ``"4,5"`` -> ``(4, 5)``; ``"2-5"`` -> ``(2, 3, 4, 5)``; ``"0,3-4"`` -> ``(0, 3, 4)``."""
    layers: set[int] = set()
    for piece in str(spec).replace(" ", "").split(","):
        if not _SPEC.match(piece):
            raise LayerscopeError(f"has {piece!r}, which is not a block number or a range like 2-5")
        low, _, high = piece.partition("-")
        low_i, high_i = int(low), int(high or low)
        if high_i < low_i:
            raise LayerscopeError(f"has the range {piece!r}, which runs backwards")
        layers.update(range(low_i, high_i + 1))
    return tuple(sorted(layers))
