"""The config of ``layerscope compare`` (:func:`layerscope.compare`), declared apart from the experiment.

Importing this module imports no torch, transformers or pandas: the command line builds its options from it, and
``--help`` or a bad value answers before any model code loads. ``run`` imports the experiment itself.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..capture.contexts import context_problem
from ..errors import LayerscopeError, choices_text
from ..experiment import option
from ..model_spec import ModelSpec, specs_argv
from ..tokensets.options import MultiToken, TokenSetOptions
from ..user_files import UserFileError
from .inspect_config import read_prompts_file

if TYPE_CHECKING:  # pragma: no cover
    from .compare_result import CompareResult


#: the fewest inputs compared (debiased CKA needs 4)
MIN_ITEMS = 4


def read_prompts(path: str) -> list[str]:
    """The non-blank lines of a prompts file (as ``inspect --prompts-file`` reads them)."""
    return read_prompts_file(path)


@dataclass(frozen=True, kw_only=True)
class CompareConfig(TokenSetOptions):
    """What ``layerscope compare`` runs.

    Attributes:
        models: two or more models (``--model``, repeated), loaded one at a time, each freed after its capture.
        sets, tokens, leading_space: the words (see :class:`TokenSetOptions`); with neither words nor prompts,
            ``categories``. The last token of each word is read.
        prompts: prompts instead of words (``--prompt``, repeated); the last token of each is read.
        prompts_file: a text file with one prompt per line, read after ``prompts``.
        context: where a word sits: ``bos`` (alone after BOS), ``nobos``, or a template with ``{word}``.
        bos: put the BOS token before each prompt (``--no-bos`` turns it off).
        reference: the model the others are measured against: a ``NAME`` given as ``--model NAME=SOURCE``, or
            a source as given (``default`` for the default model); None: the first model.
        weights: also compare the checkpoints' tensors when both are checkpoints of one architecture.
        batch_size: inputs per forward pass.
    """

    experiment = "compare"

    models: tuple[ModelSpec, ...] = option((), flag="--model")
    multi_token: MultiToken = option("mean", flag="")
    prompts: tuple[str, ...] = option((), flag="--prompt", metavar="TEXT", help="a prompt instead of words; repeatable")
    prompts_file: str | None = option(None, metavar="FILE", help="a text file with one prompt per line")
    context: str = option(
        "bos",
        metavar="bos|nobos|TEMPLATE",
        help="each word alone after BOS (default), alone without BOS, or in a template such as 'The word is {word}'",
    )
    bos: bool = option(True, flag="--no-bos", help="do not put the BOS token before each prompt")
    reference: str | None = option(
        None,
        metavar="NAME",
        help="the model the others are measured against: a NAME of --model NAME=SOURCE or a source (default: the "
        "first)",
    )
    weights: bool = option(True, flag="--no-weights", help="do not compare the checkpoints' tensors")
    batch_size: int = option(32, minimum=1, help="inputs per forward pass (default 32)")

    # ----- inputs ----------------------------------------------------------------------------------------
    @property
    def uses_prompts(self) -> bool:
        return bool(self.prompts) or self.prompts_file is not None

    def all_prompts(self) -> list[str]:
        prompts = list(self.prompts)
        if self.prompts_file is not None:
            try:
                prompts += read_prompts(self.prompts_file)
            except UserFileError as exc:
                raise self.error("prompts_file", self.prompts_file, exc.problem) from None
        return prompts

    def word_sets(self) -> dict[str, list[str]]:
        if not self.sets and not self.tokens:
            return TokenSetOptions.word_sets(dataclasses.replace(self, sets=("categories",)))
        return super().word_sets()

    def n_items(self) -> int:
        if self.uses_prompts:
            return len(self.all_prompts())
        return sum(len(words) for words in self.word_sets().values())

    def reference_index(self) -> int:
        """The position of the reference in ``models`` (0 without ``reference``)."""
        if self.reference is None:
            return 0
        wanted = str(self.reference)
        for index, spec in enumerate(self.models):
            if wanted in (spec.name, spec.value, spec.label):
                return index
        for index, spec in enumerate(self.models):  # a path written another way
            if spec.source and os.path.exists(wanted) and os.path.realpath(wanted) == os.path.realpath(spec.source):
                return index
        valid = list(dict.fromkeys(spec.name or spec.label for spec in self.models))
        raise self.error("reference", self.reference, f"names none of the models; valid: {choices_text(valid)}")

    # ----- checks ------------------------------------------------------------------------------------------
    def validate(self) -> None:
        super().validate()
        if isinstance(self.models, ModelSpec) or not all(isinstance(m, ModelSpec) for m in self.models):
            raise self.error("models", self.models, "must be a tuple of ModelSpec")
        if len(self.models) < 2:
            raise self.error("models", [m.label for m in self.models], "gives fewer than 2 models; give two or more")
        for spec in self.models:
            try:
                spec.validate()
            except LayerscopeError as exc:
                raise self.error("models", spec.value, f"is not valid: {exc}") from None
        if isinstance(self.prompts, str):
            raise self.error("prompts", self.prompts, "must be a tuple of texts (the Python API accepts one text)")
        if self.prompts_file is not None and not str(self.prompts_file).strip():
            raise self.error("prompts_file", self.prompts_file, "is empty; give a text file with one prompt per line")
        if self.uses_prompts and (self.sets or self.tokens):
            raise self.error(
                "prompts", list(self.prompts) or self.prompts_file,
                "comes with words (--set/--tokens); give words or prompts, not both",
            )  # fmt: skip
        if self.multi_token != "mean":
            raise self.error("multi_token", self.multi_token, "is not used: compare reads the last token of each word")
        if self.uses_prompts:
            for prompt in self.all_prompts():
                if not prompt.strip():
                    raise self.error("prompts", prompt, "is empty; every prompt needs at least one character")
            if self.context != "bos":
                raise self.error("context", self.context, "applies to words; prompts are read as given")
        else:
            problem = context_problem(self.context)
            if problem:
                raise self.error("context", self.context, problem)
        n = self.n_items()
        if n < MIN_ITEMS:
            what = "prompts" if self.uses_prompts else "words"
            raise self.error(
                "prompts" if self.uses_prompts else "sets",
                list(self.prompts) if self.uses_prompts else list(self.sets),
                f"gives {n} {what}; CKA needs at least {MIN_ITEMS}",
            )
        self.reference_index()

    def command(self) -> list[str]:
        """The command line; every model is one ``--model`` (shared options from the first)."""
        argv = super(CompareConfig, dataclasses.replace(self, models=())).command()
        return argv[:2] + specs_argv(self.models) + argv[2:]

    def run(self, model=None) -> CompareResult:
        from .compare import run_compare  # the experiment itself, with its heavy imports: only when it runs

        return run_compare(self, model)
