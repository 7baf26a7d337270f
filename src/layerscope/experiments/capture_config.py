"""The config of ``layerscope capture`` (:func:`layerscope.capture`), declared apart from the experiment.

Importing this module imports no torch, transformers or pandas: the command line builds its options from it, and
``--help`` or a bad value answers before any model code loads. ``run`` imports the experiment itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..capture.contexts import context_problem
from ..experiment import option
from ..model_spec import ModelSpec
from ..tokensets import merge_sets
from ..tokensets.options import TokenSetOptions
from .layers_config import check_layers_field, check_memory_budget

if TYPE_CHECKING:  # pragma: no cover
    from .capture import CaptureResult


POSITIONS = ("last", "all")


@dataclass(frozen=True, kw_only=True)
class CaptureConfig(TokenSetOptions):
    """What :func:`residuals` runs: prompts at positions, or words in a context (one or the other).

    Attributes:
        model: which model (default: the embedded Gemma 3 270M).
        prompts: texts to run, each read at ``positions``.
        sets, tokens, leading_space, multi_token: words to run in ``context`` (see :class:`TokenSetOptions`);
            ``multi_token`` also pools a group of several prompt positions.
        inline: more word sets given inline, as ``((name, (word, ...)), ...)``.
        layers: ``"all"`` (``embed`` and every block) or names such as ``"embed,0,6,-1"`` (``norm``: the
            final norm's output).
        positions: for prompts: ``"last"``, ``"all"`` or one tuple of positions per prompt (pooled into one item).
        context: for words: ``"bos"``, ``"nobos"`` or a template with ``{word}``.
        bos: put BOS before each prompt.
        batch_size: prompts per forward pass.
        memory_budget: bytes (or ``"512MB"``); captures above it go to a memory-mapped file.
    """

    experiment = "capture"
    has_command = False  # Python only: layerscope.residuals(...)

    model: ModelSpec = option(ModelSpec(), flag="--model")
    prompts: tuple[str, ...] = option((), flag="--prompt")
    inline: tuple[tuple[str, tuple[str, ...]], ...] = option((), flag="")
    layers: str = "all"
    positions: str | tuple[tuple[int, ...], ...] = option("last", flag="")
    context: str = "bos"
    bos: bool = option(True, flag="--no-bos")
    batch_size: int = option(32, minimum=1)
    memory_budget: int | str | None = None

    @property
    def reads_words(self) -> bool:
        return bool(self.sets or self.tokens or self.inline)

    def validate(self) -> None:
        super().validate()
        if isinstance(self.prompts, str):
            raise self.error("prompts", self.prompts, "must be a tuple of texts")
        if bool(self.prompts) == self.reads_words:
            raise self.error(
                "prompts",
                self.prompts,
                "and sets: give either prompts or sets (words) to capture, not both nor neither",
            )
        check_layers_field(self)
        check_memory_budget(self)
        if self.prompts:
            if any(not isinstance(p, str) or not p for p in self.prompts):
                raise self.error("prompts", self.prompts, "has an empty prompt; give texts")
            if isinstance(self.positions, str):
                if self.positions not in POSITIONS:
                    problem = "is not valid; give 'last', 'all' or positions per prompt"
                    raise self.error("positions", self.positions, problem)
            elif len(self.positions) != len(self.prompts):
                problem = f"gives {len(self.positions)} groups for {len(self.prompts)} prompts"
                raise self.error("positions", self.positions, problem)
        else:
            problem = context_problem(self.context)
            if problem:
                raise self.error("context", self.context, problem)
            self.word_sets()

    def word_sets(self) -> dict[str, list[str]]:

        if not self.inline:
            return super().word_sets()
        parts = [super().word_sets()] if self.sets or self.tokens else []
        for name, words in self.inline:
            if not words or any(not str(w).strip() for w in words):
                raise self.error("inline", dict(self.inline), f"set {name!r} has no words or an empty word")
            parts.append({str(name): [str(w) for w in words]})
        return merge_sets(parts)

    def run(self, model=None) -> CaptureResult:
        from .capture import run_capture  # the experiment itself, with its heavy imports: only when it runs

        return run_capture(self, model)
