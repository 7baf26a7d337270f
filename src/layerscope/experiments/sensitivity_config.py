"""The config of ``layerscope sensitivity`` (:func:`layerscope.sensitivity`), declared apart from the
experiment.

Importing this module imports no torch, transformers or pandas: the command line builds its options from it, and
``--help`` or a bad value answers before any model code loads. ``run`` imports the experiment itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..checkpoints.mlx_quant import VALID_BITS, VALID_GROUP_SIZES
from ..errors import LayerscopeError, choices_text
from ..experiment import ExperimentConfig, option
from ..model_spec import ModelSpec
from ..tasks.registry import TASKS, builtin_task
from .inspect_config import read_prompts_file

if TYPE_CHECKING:  # pragma: no cover
    from .sensitivity_result import SensitivityResult


_BUDGET = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*(%|bpw)\s*")


def parse_budget(text: str) -> tuple[str, float]:
    """``"5%"`` -> ``("percent", 5.0)`` (bytes beyond uniform quantization), ``"4.5bpw"`` -> ``("bpw", 4.5)``
    (bits per quantized weight, scales and biases included); :class:`LayerscopeError` otherwise."""
    found = _BUDGET.fullmatch(str(text))
    if found is None:
        raise LayerscopeError(
            f"budget {text!r} is not a budget; give extra bytes over uniform (5%) or bits per weight (4.5bpw)"
        )
    return ("percent" if found.group(2) == "%" else "bpw"), float(found.group(1))


@dataclass(frozen=True, kw_only=True)
class SensitivityConfig(ExperimentConfig):
    """What ``layerscope sensitivity`` runs.

    Attributes:
        model: the reference (default: the embedded Gemma 3 270M).
        quantized: the quantized copy (an MLX directory, a GGUF file, any model ``load_model`` opens); None:
            quantized on the fly at ``bits``.
        bits, group_size: MLX quantization on the fly (and the base of a recipe when ``quantized`` is not MLX).
        task: built-in tasks whose prompts are read (repeatable; default every one); ``text``: a file with one
            prompt per line instead.
        n: prompts per task; shots: worked examples before each (None: the task's default).
        budget: ``5%`` (extra bytes over uniform) or ``4.5bpw``: choose the parts kept at ``keep_bits``.
        keep_bits: the bits of the parts a recipe keeps.
        activations: also restore each block's output from the reference run.
        seed: the tasks' order and the bootstrap intervals.
        batch_size: prompts per forward.
    """

    experiment = "sensitivity"

    model: ModelSpec = option(ModelSpec(), flag="--model")
    quantized: ModelSpec | None = option(
        None, metavar="Q", help="the quantized copy (MLX dir, GGUF, ...); default: --bits on the fly"
    )
    bits: int = option(4, metavar="N", help="MLX bits to quantize the reference to on the fly (default 4)")
    group_size: int = option(64, metavar="N", help="MLX inputs per scale and bias: 32, 64 or 128 (default 64)")
    task: tuple[str, ...] = option(
        (), metavar="TASK", help=f"a built-in task's prompts ({', '.join(TASKS)}); repeatable; default all"
    )
    text: str | None = option(None, metavar="FILE", help="a text file with one prompt per line instead of tasks")
    n: int = option(40, minimum=1, help="prompts per task (default 40)")
    shots: int | None = option(None, minimum=0, help="worked examples before each task prompt (default: the task's)")
    budget: str | None = option(
        None, metavar="5%|4.5bpw", help="extra bytes over uniform (5%%) or bits per weight (4.5bpw): write recipe.json"
    )
    keep_bits: int = option(8, metavar="N", help="MLX bits of the parts a recipe keeps (default 8)")
    activations: bool = option(True, flag="--no-activations", help="do not restore each block's output")
    seed: int = option(0, minimum=0, help="seed of the tasks and the bootstrap intervals (default 0)")
    batch_size: int = option(16, minimum=1, help="prompts per forward (default 16)")

    def __post_init__(self) -> None:
        if isinstance(self.task, str):
            object.__setattr__(self, "task", (self.task,))
        if isinstance(self.text, os.PathLike):
            object.__setattr__(self, "text", os.fspath(self.text))

    def validate(self) -> None:
        super().validate()
        if self.quantized is not None and not isinstance(self.quantized, ModelSpec):
            raise self.error("quantized", self.quantized, "must be a ModelSpec")
        if isinstance(self.bits, bool) or self.bits not in VALID_BITS:
            raise self.error("bits", self.bits, f"is not supported by MLX; valid: {choices_text(VALID_BITS)}")
        if isinstance(self.keep_bits, bool) or self.keep_bits not in VALID_BITS:
            raise self.error("keep_bits", self.keep_bits, f"is not supported by MLX; valid: {choices_text(VALID_BITS)}")
        if isinstance(self.group_size, bool) or self.group_size not in VALID_GROUP_SIZES:
            raise self.error(
                "group_size", self.group_size, f"is not supported by MLX; valid: {choices_text(VALID_GROUP_SIZES)}"
            )
        for name in self.task:
            if name not in TASKS:
                raise self.error("task", name, f"is not a built-in task; valid: {choices_text(list(TASKS))}")
        if self.text is not None and self.task:
            raise self.error("text", self.text, "comes with --task; give task prompts or a text file, not both")
        if self.text is not None:
            with self.checking("text"):
                self.prompts()
        if self.budget is not None:
            with self.checking("budget"):
                kind, value = parse_budget(self.budget)
            if value < 0:
                raise self.error("budget", self.budget, "is below zero; give extra bytes (5%) or bits per weight")
            if kind == "bpw" and value < self.bits:
                raise self.error(
                    "budget", self.budget, f"is below the base's {self.bits} bits per weight; give more bits"
                )
            if self.keep_bits <= self.bits and self.quantized is None:
                raise self.error(
                    "keep_bits", self.keep_bits, f"is not above --bits {self.bits}; keep parts at more bits"
                )

    def prompts(self) -> list[str]:
        """The prompts: the text file's lines, or ``n`` prompts of each task."""
        if self.text is not None:
            return read_prompts_file(self.text)
        out = []
        for name in self.task or tuple(TASKS):
            out += [item.prompt for item in builtin_task(name).task(self.n, self.shots, self.seed).items]
        return out

    def run(self, model=None) -> SensitivityResult:
        from .sensitivity import run_sensitivity  # the experiment itself, with its heavy imports: only when it runs

        return run_sensitivity(self, model)
