"""The config of ``layerscope inspect`` (:func:`layerscope.inspect`), declared apart from the experiment.

Importing this module imports no torch, transformers or pandas: the command line builds its options from it, and
``--help`` or a bad value answers before any model code loads. ``run`` imports the experiment itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..experiment import ExperimentConfig, option
from ..model_spec import ModelSpec
from ..user_files import UserFileError, read_user_text, text_lines

if TYPE_CHECKING:  # pragma: no cover
    from .inspect_result import InspectResult


_ARITHMETIC = re.compile(r"^\s*(\d+)\s*([-+*/])\s*(\d+)\s*=\s*$")


def arithmetic_answer(prompt: str) -> str | None:
    """The answer of a prompt like ``"5+2="`` (``"7"``), or None when it is not simple arithmetic.

    Division counts only when exact; a negative result keeps its sign (``"2-5="`` -> ``"-3"``).
    """
    match = _ARITHMETIC.match(prompt)
    if not match:
        return None
    a, op, b = int(match[1]), match[2], int(match[3])
    if op == "/":
        return str(a // b) if b and a % b == 0 else None
    return str({"+": a + b, "-": a - b, "*": a * b}[op])


def read_prompts_file(path: str) -> list[str]:
    """The non-blank lines of a text file (read by :func:`~layerscope.user_files.read_user_text`);
    :class:`UserFileError` when it cannot be read or holds none."""
    prompts = [line for line in text_lines(read_user_text(path, "prompts file")) if line.strip()]
    if not prompts:
        raise UserFileError("prompts file", path, "holds no prompt; give one prompt per line")
    return prompts


DEFAULT_PROMPT = "5+2="


@dataclass(frozen=True, kw_only=True)
class InspectConfig(ExperimentConfig):
    """What ``layerscope inspect`` runs.

    Attributes:
        model: which model (default: the embedded Gemma 3 270M).
        prompts: the prompts, e.g. ``("5+2=", "3+4=")`` (``--prompt``, repeated); with neither prompts
            nor ``prompts_file``: ``("5+2=",)``.
        prompts_file: a text file with one prompt per line, read after ``prompts``.
        position: the token position read in every prompt (negative counts from the end).
        target: the expected answer (``--target``, repeated): one for all prompts, or one per prompt;
            empty: arithmetic prompts get their computed answer, others none.
        bos: put the BOS token first (``--no-bos`` turns it off).
        top_k: tokens listed per layer by the logit lens.
        phases: number of layer phases (None: chosen by silhouette).
        compare_model: a second model to run the same prompts through (``--compare-model``; from the
            command line it takes the same ``--dtype``/``--device-map``/``--trust-remote-code``).
        raw: draw raw values in the heatmap; by default each layer's row is divided by its RMS, since the
            residual's scale grows by orders of magnitude with depth (the raw mean/RMS stay in the strip).
    """

    experiment = "inspect"

    model: ModelSpec = option(ModelSpec(), flag="--model")
    prompts: tuple[str, ...] = option((), flag="--prompt", metavar="TEXT", help="a prompt; repeatable (default '5+2=')")
    prompts_file: str | None = option(None, metavar="FILE", help="a text file with one prompt per line")
    position: int = option(-1, help="token position to read (default -1, the last)")
    target: tuple[str, ...] = option(
        (),
        metavar="TEXT",
        help="expected answer (one for all prompts or one per prompt); arithmetic prompts like '5+2=' get theirs "
        "computed",
    )
    bos: bool = option(True, flag="--no-bos", help="do not put the BOS token first")
    top_k: int = option(5, minimum=1, help="tokens listed per layer by the logit lens (default 5)")
    phases: int | None = option(None, minimum=1, metavar="K", help="number of layer phases (default: chosen)")
    compare_model: ModelSpec | None = option(
        None,
        flag="--compare-model",
        metavar="M",
        help="a second model to compare layer by layer (takes the same --dtype, --device-map, --trust-remote-code)",
    )
    raw: bool = option(False, help="heatmap of raw values (default: each layer divided by its RMS)")

    def all_prompts(self) -> list[str]:
        """``prompts``, then the lines of ``prompts_file``; ``["5+2="]`` when both are empty."""
        prompts = list(self.prompts)
        if self.prompts_file is not None:
            try:
                prompts += read_prompts_file(self.prompts_file)
            except UserFileError as exc:
                raise self.error("prompts_file", self.prompts_file, exc.problem) from None
        return prompts or [DEFAULT_PROMPT]

    def validate(self) -> None:
        super().validate()
        if isinstance(self.prompts, str) or isinstance(self.target, str):
            name = "prompts" if isinstance(self.prompts, str) else "target"
            raise self.error(name, getattr(self, name), "must be a tuple of texts (the Python API accepts one text)")
        if self.prompts_file is not None and not str(self.prompts_file).strip():
            raise self.error("prompts_file", self.prompts_file, "is empty; give a text file with one prompt per line")
        prompts = self.all_prompts()
        for prompt in prompts:
            if not prompt.strip():
                raise self.error("prompts", prompt, "is empty; every prompt needs at least one character")
        if self.target and len(self.target) not in (1, len(prompts)):
            raise self.error(
                "target",
                self.target,
                f"gives {len(self.target)} targets for {len(prompts)} prompt{'s' if len(prompts) != 1 else ''}; "
                "give one for all prompts or one per prompt",
            )

    def run(self, model=None) -> InspectResult:
        """``model``: a loaded model, or ``[model, compare_model]`` (either may be None: loaded here)."""
        other = None
        if isinstance(model, (list, tuple)):
            model, other = model
        from .inspect import run_inspect  # the experiment itself, with its heavy imports: only when it runs

        return run_inspect(self, model, other)
