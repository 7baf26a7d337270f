"""Seed 001, second half: task accuracy with decoder blocks removed, one configuration at a time.

Flow: task (a built-in task, see :mod:`layerscope.tasks.registry`, or a file) -> token ids -> :class:`~layerscope.capture.ablation.LayerAblation`
(the baseline, then each configuration) -> one row per item and configuration -> accuracy table ->
figures. ``--drop k`` removes decoder block ``k``, whose output is the layer named ``k`` everywhere else
(see :mod:`layerscope.capture.layer_spec`); ``--part attn`` / ``mlp`` removes only its attention / MLP
contribution. Every configuration has one label, in every file and figure: ``baseline``, ``drop 4``,
``drop 4,5``, ``drop attn 4``, ``drop mlp 4,5``.

With ``resume_dir`` set (the Python function and the command set it to the run directory), every
finished configuration is kept at once under ``<resume_dir>/parts/`` and a rerun with the same settings
skips it; a rerun with other settings is refused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd

from .. import progress
from ..analysis.accuracy import accuracy_table
from ..capture.ablation import LayerAblation, encode_task
from ..experiment import Result
from ..model_spec import ModelSpec
from ..models import Model, require_lm_head
from ..models.loading import given_or_loaded
from ..render.accuracy import accuracy_figure, accuracy_png
from ..rundir import model_record
from ..runner import execute
from ..tasks import (
    OPERATIONS,
    Task,
)
from .ablate_config import _SPEC, ALL_DISTINCT_CAP, SCORING_ALIASES, SCORING_TEXT, SCORINGS, AblateConfig, parse_drop  # noqa: F401  (declared in a light module)
from .ablate_parts import PartStore, config_label, part_phrase, parts_phrase, removed_part
from .findings import blocks_phrase

__all__ = ["AblateConfig", "AblateResult", "ablate", "config_label", "parse_drop", "run_ablate"]


@dataclass(kw_only=True, repr=False)
class AblateResult(Result):
    """The outcome of an ablation run.

    Attributes:
        accuracy: one row per configuration (see :func:`layerscope.analysis.accuracy.accuracy_table`):
            ``config`` (the label: ``baseline``, ``drop 4``, ``drop 4,5``, ``drop attn 4``), ``part``
            (``block``, ``attn``, ``mlp``; ``none`` for the baseline), ``removed_layers`` (the blocks, ``4,5``),
            ``accuracy, n, correct, delta, ci_low, ci_high, chance, scoring, mean_p_first, mean_p_answer``,
            then ``accuracy[<group>]`` and ``n[<group>]``.
        examples: one row per item and configuration: ``item, prompt, answer, group, config, part,
            removed_layers, prediction, correct, scoring, p_first, p_answer``.
        groups: the task's groups (operations), the per-group columns of ``accuracy``.
        task_name: the task's name (``arithmetic +-*/ 1-digit``, ``capitals``, or the file's stem).
        scoring: the scoring used, ``"first"`` or ``"answer"`` (``config.scoring`` None resolved).
        chance: the accuracy of a uniform guess among the task's answers (also the ``chance`` column).
        answers_tokenized_alone: answers tokenized on their own (a token merged across prompt and answer).
        resumed_configs: configurations read back from ``parts/`` instead of computed.
    """

    config: AblateConfig
    accuracy: pd.DataFrame
    examples: pd.DataFrame
    groups: list[str]
    task_name: str
    scoring: str = "first"
    chance: float | None = None
    answers_tokenized_alone: int = 0
    resumed_configs: int = 0

    main_file: ClassVar[str] = "accuracy.html"

    @property
    def n_items(self) -> int:
        return int(self.accuracy["n"].iloc[0]) if len(self.accuracy) else 0

    def title(self) -> str:
        model = ", ".join(self.model_names) or "model"
        parts = parts_phrase(self.config.part)
        return f"{model}: {self.task_name}, accuracy with {parts} removed ({SCORING_TEXT[self.scoring]})"

    def figure(self):
        """Interactive plotly figure: accuracy per configuration, baseline line, per-group lines."""
        return accuracy_figure(self.accuracy, self.groups, title=self.title())

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"accuracy": self.accuracy, "examples": self.examples}

    def figures(self) -> dict:
        return {"accuracy": self.figure}

    def images(self) -> dict:
        return {"accuracy": lambda: accuracy_png(self.accuracy, self.groups, title=self.title())}

    def record(self) -> dict:
        return {
            "task": self.task_name,
            "n_items": self.n_items,
            "scoring": self.scoring,
            "chance": self.chance,
            "answers_tokenized_alone": self.answers_tokenized_alone,
            "resumed_configs": self.resumed_configs,
            "findings": self.findings(),
        }

    def findings(self) -> dict[str, str]:
        """``{"accuracy": sentence}``: the removal that lowers accuracy most, and how many lower it at all."""
        table = self.accuracy
        base = table.loc[table["config"] == "baseline", "accuracy"]
        others = table[(table["config"] != "baseline") & table["accuracy"].notna()]
        if not len(base) or not len(others) or pd.isna(base.iloc[0]):
            return {}
        baseline = float(base.iloc[0])
        worst = others.loc[others["accuracy"].idxmin()]
        lowest = float(worst["accuracy"])
        lower = int((others["accuracy"] < baseline).sum())
        if lowest >= baseline:
            return {
                "accuracy": f"no removal lowers accuracy below the baseline {baseline:.2f} ({len(others)} removals tried)"
            }
        ties = int((others["accuracy"] == lowest).sum())
        what = part_phrase(str(worst.get("part", "block")), blocks_phrase(str(worst["removed_layers"])))
        largest = "the largest drop" if ties == 1 else f"the largest drop, shared by {ties} removals"
        return {
            "accuracy": f"removing {what} drops accuracy from {baseline:.2f} to {lowest:.2f}, {largest}; "
            f"{lower} of {len(others)} removals lower it"
        }

    @classmethod
    def from_files(cls, config, tables, arrays, record, run_dir) -> AblateResult:
        """A saved ablation run (see :func:`layerscope.load_run`)."""
        accuracy = tables["accuracy"]
        groups = [c[len("accuracy[") : -1] for c in accuracy.columns if c.startswith("accuracy[") and c.endswith("]")]
        return cls(
            config=config,
            accuracy=accuracy,
            examples=tables["examples"],
            groups=groups,
            task_name=str(record.get("task", config.task)),
            scoring=str(record.get("scoring", SCORING_ALIASES.get(config.scoring, config.scoring) or "first")),
            chance=record.get("chance"),
            answers_tokenized_alone=int(record.get("answers_tokenized_alone", 0)),
            resumed_configs=int(record.get("resumed_configs", 0)),
            **cls.saved(record),
        )

    def summary(self) -> list[str]:
        table = self.accuracy
        base = table.loc[table["config"] == "baseline", "accuracy"]
        worst = table[table["config"] != "baseline"].nsmallest(3, "accuracy")
        line = f"{self.n_items} items"
        if len(base):
            line += f", baseline accuracy {float(base.iloc[0]):.3f}"
        line += f" ({self.scoring} scoring" + (f", chance {self.chance:.3f})" if self.chance is not None else ")")
        if len(worst):
            line += "; lowest: " + ", ".join(f"{r.config} {r.accuracy:.3f}" for r in worst.itertuples())
        return [line]


def _rows(
    task: Task, model: Model, removed: tuple[int, ...], predictions, scoring: str, part: str = "block"
) -> pd.DataFrame:
    n = len(task)
    return pd.DataFrame(
        {
            "item": range(len(task)),
            "prompt": [i.prompt for i in task.items],
            "answer": [i.answer for i in task.items],
            "group": [i.group for i in task.items],
            "config": config_label(removed, part),
            "part": removed_part(removed, part),
            "removed_layers": ",".join(map(str, removed)),
            "prediction": [model.decode(ids) for ids in predictions.tokens],
            "correct": predictions.correct,
            "scoring": scoring,
            "p_first": predictions.p_first if predictions.p_first is not None else [float("nan")] * n,
            "p_answer": predictions.p_answer if predictions.p_answer is not None else [float("nan")] * n,
        }
    )


def run_ablate(
    config: AblateConfig,
    model: Model | None = None,
    *,
    on_config: Callable[[str], None] | None = None,
) -> AblateResult:
    """Run the ablation sweep on ``model`` (loaded from ``config.model`` when None); no final files written.

    With ``config.resume_dir``, finished configurations are kept under its ``parts/`` and reused on a rerun.
    ``on_config(label)`` is called after each configuration is finished (and kept).
    """
    task = config.build_task()
    timings: dict[str, float] = {}
    model = given_or_loaded(config.model, model, timings)
    require_lm_head(model, "ablate")
    configs = config.ablations(model.n_layers)  # (part, removed)

    start = time.perf_counter()
    store = None
    if config.resume_dir is not None:
        # What decides the results; the model by its fingerprint, not by the path it was given as.
        identity = {
            "config": config.identity(),
            "model": model.fingerprint,
            "items": [[i.prompt, i.answer, i.group] for i in task.items],
        }
        store = PartStore(config.resume_dir, identity)
    encoded = encode_task(model, [i.prompt for i in task.items], [i.answer for i in task.items])
    scoring = resolved_scoring(config.scoring, encoded.answer_ids)
    todo = [(part, c) for part, c in configs if store is None or not store.done(c, part)]
    needed = [c for _, c in todo]
    engine = LayerAblation(model, encoded, scoring=scoring, batch_size=config.batch_size, needed=needed)
    frames: dict[tuple[str, tuple[int, ...]], pd.DataFrame] = {}
    for part, removed in progress.track(configs, "Removing blocks", total=len(configs)):
        if store is not None and store.done(removed, part):
            frames[part, removed] = store.load(removed, part)
        else:
            frames[part, removed] = _rows(task, model, removed, engine.run(removed, part), scoring, part)
            if store is not None:
                store.save(removed, frames[part, removed], part)
        if on_config is not None:
            on_config(config_label(removed, part))
    timings["compute"] = time.perf_counter() - start
    if store is not None:  # one code path for fresh and resumed runs: every table comes back from disk
        frames = {(part, removed): store.load(removed, part) for part, removed in configs}
    examples = pd.concat([frames[c] for c in configs], ignore_index=True)
    accuracy = accuracy_table(
        examples,
        [config_label(c, part) for part, c in configs],
        task.groups,
        chance=task.chance,
        seed=config.seed,
    )
    return AblateResult(
        config=config,
        accuracy=accuracy,
        examples=examples,
        groups=task.groups,
        task_name=task.name,
        scoring=scoring,
        chance=task.chance,
        answers_tokenized_alone=encoded.split_answers,
        resumed_configs=len(configs) - len(todo),
        models=[model_record(model)],
        timings=timings,
    )


def resolved_scoring(scoring: str | None, answer_ids: Sequence[Sequence[int]]) -> str:
    """``scoring`` by its name (``"greedy"`` is ``"answer"``); None: ``"answer"`` when some answer has several
    tokens, else ``"first"`` (the two give the same verdicts then)."""
    if scoring is None:
        return "answer" if any(len(ids) > 1 for ids in answer_ids) else "first"
    return SCORING_ALIASES.get(scoring, scoring)


def ablate(
    task: str | os.PathLike = "arithmetic",
    *,
    model: ModelSpec | Model | str | None = None,
    n: int | None = None,
    shots: int | None = None,
    ops: str = OPERATIONS,
    digits: int = 1,
    drop: Sequence[str] | str | None = None,
    part: Sequence[str] | str = "block",
    scoring: str | None = None,
    seed: int = 0,
    batch_size: int = 64,
    allow_negative: bool = False,
    inexact_division: bool = False,
    duplicates: bool = False,
    out: str | Path | None = None,
) -> AblateResult:
    """Task accuracy with each decoder block removed in turn (or the given sets), against the baseline.

    Args:
        task: a built-in task (``layerscope.tasks.registry.TASKS``: arithmetic, boolean, successor,
            predecessor, capitals, copying, antonyms) or a ``.csv``/``.jsonl`` file with ``prompt`` and
            ``answer`` (and ``group``).
        shots: worked examples before each prompt of a built-in task (None: the task's default).
        scoring: ``"first"`` or ``"answer"``; None: ``"answer"`` when some answer has several tokens.
        model: a loaded model, a source, a :class:`ModelSpec`, or None for the default model.
        drop: sets of blocks removed together, e.g. ``["4,5", "10-12"]`` (default: each block alone).
        part: ``"block"`` (default), ``"attn"`` or ``"mlp"`` (only that contribution of each block removed);
            ``"attn,mlp"`` or ``"all"`` sweep the sets once per part.
        out: also write the run directory there; an interrupted run resumes from it when rerun.

    Example:
        >>> result = layerscope.ablate("arithmetic", n=200, ops="+-")
        >>> result.accuracy[["config", "accuracy", "delta"]]
        >>> result.figure()
        >>> layerscope.ablate("my_task.csv", drop=["4,5", "10-12"], out="runs/mine")   # resumable
        >>> layerscope.ablate("arithmetic", part="attn,mlp")      # each block's attention, then its MLP
    """
    config = AblateConfig(
        model=ModelSpec.of(model),
        task=os.fspath(task),
        n=n,
        shots=shots,
        ops=ops,
        digits=digits,
        allow_negative=allow_negative,
        inexact_division=inexact_division,
        duplicates=duplicates,
        seed=seed,
        drop=(drop,) if isinstance(drop, str) else tuple(drop or ()),
        part=part,
        scoring=scoring,
        batch_size=batch_size,
        resume_dir=None if out is None else os.fspath(out),
    )
    return execute(config, model if isinstance(model, Model) else None, out=out)
