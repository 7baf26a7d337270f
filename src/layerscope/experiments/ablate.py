"""Seed 001, second half: task accuracy with decoder layers removed, one configuration at a time.

Flow: task (arithmetic or a file) -> token ids -> :class:`~layerscope.capture.ablation.LayerAblation`
(the baseline, then each configuration) -> one row per item and configuration -> accuracy table ->
figures. With ``out`` given, every finished configuration is saved at once under ``out/parts/`` and a
rerun with the same settings skips it.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from .. import progress
from ..analysis.accuracy import accuracy_table
from ..atomic import atomic_path
from ..capture.ablation import SCORINGS, LayerAblation, check_layers, encode_task
from ..errors import LayerscopeError
from ..models import Model, model_for_run
from ..rundir import default_run_dir, write_run_json
from ..tasks import OPERATIONS, Task, arithmetic_task, load_task_file
from .ablate_parts import PartStore, part_name

_SPEC = re.compile(r"^\d+(-\d+)?$")


@dataclass
class AblateConfig:
    """What ``layerscope ablate`` runs.

    Attributes:
        task: ``"arithmetic"`` or a ``.csv``/``.jsonl`` file with ``prompt`` and ``answer`` columns.
        n: arithmetic items (None: every distinct problem, at most 1000).
        ops, digits, non_negative, exact_division, duplicates, seed: the arithmetic generator's options.
        drop: sets of layers removed together, as specs (``"4"``, ``"4,5"``, ``"2-5"``); empty: each layer alone.
        scoring: ``"first"`` (the answer's first token) or ``"greedy"`` (the whole answer).
        batch_size: prompts per forward pass.
        model: the model source (None: the default model).
    """

    task: str = "arithmetic"
    n: int | None = None
    ops: str = OPERATIONS
    digits: int = 1
    non_negative: bool = True
    exact_division: bool = True
    duplicates: bool = False
    seed: int = 0
    drop: list[str] = field(default_factory=list)
    scoring: str = "first"
    batch_size: int = 64
    model: str | None = None


def parse_drop(spec: str) -> tuple[int, ...]:
    """``"4"`` -> ``(4,)``; ``"4,5"`` -> ``(4, 5)``; ``"2-5"`` -> ``(2, 3, 4, 5)``; ``"0,3-4"`` -> ``(0, 3, 4)``."""
    layers: set[int] = set()
    for piece in str(spec).replace(" ", "").split(","):
        if not _SPEC.match(piece):
            raise LayerscopeError(f"bad --drop {spec!r}: {piece!r} is not a layer or a range like 2-5")
        low, _, high = piece.partition("-")
        low_i, high_i = int(low), int(high or low)
        if high_i < low_i:
            raise LayerscopeError(f"bad --drop {spec!r}: range {piece!r} runs backwards")
        layers.update(range(low_i, high_i + 1))
    return tuple(sorted(layers))


def configurations(config: AblateConfig, n_layers: int) -> list[tuple[int, ...]]:
    """The baseline ``()`` followed by each requested set of removed layers (each layer alone by default)."""
    sets = [parse_drop(spec) for spec in config.drop] or [(k,) for k in range(n_layers)]
    for removed in sets:
        check_layers(removed, n_layers)
    return [()] + [s for s in dict.fromkeys(sets) if s]


def config_label(removed: tuple[int, ...]) -> str:
    return "baseline" if not removed else "drop " + ",".join(map(str, removed))


def build_task(config: AblateConfig) -> Task:
    """The task's items: generated arithmetic, or read from the task file."""
    if config.task == "arithmetic":
        n = config.n
        if n is None:  # every distinct problem, capped at 1000
            n = min(1000, len(arithmetic_task(None, ops=config.ops, digits=config.digits,
                                               non_negative=config.non_negative,
                                               exact_division=config.exact_division)))
        return arithmetic_task(
            n, ops=config.ops, digits=config.digits, seed=config.seed, non_negative=config.non_negative,
            exact_division=config.exact_division, duplicates=config.duplicates,
        )
    task = load_task_file(config.task)
    if config.n is not None:
        task = Task(task.name, task.items[: config.n])
    return task


@dataclass
class AblateResult:
    """The outcome of an ablation run.

    Attributes:
        accuracy: one row per configuration (see :func:`layerscope.analysis.accuracy.accuracy_table`).
        examples: one row per item and configuration: ``item, prompt, answer, group, config,
            removed_layers, prediction, correct``.
        groups: the task's groups (operations), the per-group columns of ``accuracy``.
    """

    accuracy: pd.DataFrame
    examples: pd.DataFrame
    groups: list[str]
    config: AblateConfig
    task_name: str
    model_name: str
    timings: dict[str, float]
    extra: dict = field(default_factory=dict)
    _model: Model | None = field(default=None, repr=False)

    def title(self) -> str:
        return f"{self.model_name}: {self.task_name}, accuracy with layers removed ({self.config.scoring} token)"

    def figure(self):
        """Interactive plotly figure: accuracy against the removed layer(s), baseline line, per-group lines."""
        from ..render.accuracy import accuracy_figure

        return accuracy_figure(self.accuracy, self.groups, title=self.title())

    def save(self, out: str | Path) -> Path:
        """Write ``accuracy.csv``, ``examples.csv``, ``accuracy.html``, ``accuracy.png`` and ``run.json``."""
        from ..render.accuracy import accuracy_png
        from ..render.scatter import write_html

        out = Path(out)
        start = time.perf_counter()
        for name, frame in (("accuracy.csv", self.accuracy), ("examples.csv", self.examples)):
            with atomic_path(out / name) as tmp:
                frame.to_csv(tmp, index=False)
        write_html(self.figure(), out / "accuracy.html")
        accuracy_png(self.accuracy, self.groups, out / "accuracy.png", title=self.title())
        timings = {**self.timings, "write": time.perf_counter() - start}
        models = [self._model] if self._model is not None else []
        write_run_json(out, "ablate", self.config, models, timings, task=self.task_name, **self.extra)
        return out


def _rows(task: Task, model: Model, removed: tuple[int, ...], predictions) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item": range(len(task)),
            "prompt": [i.prompt for i in task.items],
            "answer": [i.answer for i in task.items],
            "group": [i.group for i in task.items],
            "config": config_label(removed),
            "removed_layers": ",".join(map(str, removed)),
            "prediction": [model.decode(ids) for ids in predictions.tokens],
            "correct": predictions.correct,
        }
    )


def run_ablate(
    config: AblateConfig,
    model: Model | None = None,
    *,
    out: str | Path | None = None,
    on_config: Callable[[str], None] | None = None,
) -> AblateResult:
    """Run the ablation sweep; with ``out``, finished configurations are kept there and reused on a rerun.

    ``on_config(name)`` is called after each configuration is finished (and saved).
    """
    if config.scoring not in SCORINGS:
        raise LayerscopeError(f"unknown scoring {config.scoring!r}; valid: {', '.join(SCORINGS)}")
    for spec in config.drop:
        parse_drop(spec)
    task = build_task(config)
    timings: dict[str, float] = {}
    model = model_for_run(model, config.model, timings)
    configs = configurations(config, model.n_layers)

    start = time.perf_counter()
    store = None
    if out is not None:
        # What decides the results; the model by its fingerprint, not by the path it was given as.
        identity = {"config": {**asdict(config), "model": None, "batch_size": None}, "model": model.fingerprint,
                    "items": [[i.prompt, i.answer, i.group] for i in task.items]}
        store = PartStore(out, identity)
    encoded = encode_task(model, [i.prompt for i in task.items], [i.answer for i in task.items])
    todo = [c for c in configs if store is None or not store.done(c)]
    engine = LayerAblation(model, encoded, scoring=config.scoring, batch_size=config.batch_size, needed=todo)
    frames: dict[tuple[int, ...], pd.DataFrame] = {}
    for removed in progress.track(configs, "Removing layers", total=len(configs)):
        if store is not None and store.done(removed):
            frames[removed] = store.load(removed)
        else:
            frames[removed] = _rows(task, model, removed, engine.run(removed))
            if store is not None:
                store.save(removed, frames[removed])
        if on_config is not None:
            on_config(part_name(removed))
    timings["compute"] = time.perf_counter() - start
    if store is not None:  # one code path for fresh and resumed runs: every table comes back from disk
        frames = {removed: store.load(removed) for removed in configs}
    examples = pd.concat([frames[c] for c in configs], ignore_index=True)
    accuracy = accuracy_table(examples, [config_label(c) for c in configs], task.groups)
    return AblateResult(
        accuracy=accuracy, examples=examples, groups=task.groups, config=config, task_name=task.name,
        model_name=model.name, timings=timings, _model=model,
        extra={"n_items": len(task), "answers_tokenized_alone": encoded.split_answers,
               "resumed_configs": len(configs) - len(todo)},
    )


def ablate(
    task: str = "arithmetic",
    *,
    model: str | Model | None = None,
    n: int | None = None,
    ops: str = OPERATIONS,
    digits: int = 1,
    drop: list[str] | str | None = None,
    scoring: str = "first",
    seed: int = 0,
    batch_size: int = 64,
    non_negative: bool = True,
    exact_division: bool = True,
    duplicates: bool = False,
    out: str | Path | None = None,
) -> AblateResult:
    """Task accuracy with each decoder layer removed in turn (or the given sets), against the baseline.

    Example:
        >>> result = layerscope.ablate("arithmetic", n=200, ops="+-")
        >>> result.accuracy[["config", "accuracy", "delta"]]
        >>> result.figure()
        >>> layerscope.ablate("my_task.csv", drop=["4,5", "10-12"], out="runs/mine")   # resumable
    """
    loaded = model if isinstance(model, Model) else None
    config = AblateConfig(
        task=str(task), n=n, ops=ops, digits=digits, non_negative=non_negative, exact_division=exact_division,
        duplicates=duplicates, seed=seed, drop=[drop] if isinstance(drop, str) else list(drop or []),
        scoring=scoring, batch_size=batch_size, model=loaded.source if loaded else model,
    )
    result = run_ablate(config, loaded, out=out)
    if out is not None:
        result.save(out)
    return result


def default_out() -> Path:
    return default_run_dir("ablate")
