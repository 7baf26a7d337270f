"""The config of ``layerscope echo`` (:func:`layerscope.echo`), declared apart from the experiment.

Importing this module imports no torch, transformers or pandas: the command line builds its options from it, and
``--help`` or a bad value answers before any model code loads. ``run`` imports the experiment itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from ..experiment import option
from ..model_spec import ModelSpec
from ..tokensets.options import MultiToken, TokenSetOptions

if TYPE_CHECKING:  # pragma: no cover
    from .echo import EchoResult


DEFAULT_PROMPT = "When John and Mary went to the store, John gave the bag to"


DEFAULT_SETS = ("echo-words",)


MAX_NEW_TOKENS = 1 << 20  # a bound before any model is known; each model's context bounds it further


Bos = Literal["both", "without", "with"]


#: the runs with and without BOS, in table order: ``layerscope.analysis.echo.BOS_SETTINGS`` (pandas), kept equal by the tests
BOS_SETTINGS = ("without", "with")
BOS_CHOICES: dict[str, tuple[str, ...]] = {"both": BOS_SETTINGS, "without": ("without",), "with": ("with",)}


@dataclass(frozen=True, kw_only=True)
class EchoConfig(TokenSetOptions):
    """What ``layerscope echo`` runs.

    Attributes:
        models: the models probed, in order (``--model``, repeatable; default: Gemma 3 270M). Each is
            loaded, probed and freed before the next.
        sets, tokens: which words (see :class:`~layerscope.tokensets.options.TokenSetOptions`); with
            neither, seed 004's ``echo-words``. A word file given as the command's argument is a set.
        leading_space: feed ``" John"`` rather than ``"John"`` (the command's ``--no-leading-space`` turns it off).
        multi_token: not used: a word of several tokens is fed whole and its first token is the echo target.
        bos: ``"both"``, ``"without"`` or ``"with"``.
        top_k: how many of the most probable next tokens to record.
        prompts: free prompts completed greedily with and without BOS.
        max_new_tokens: tokens generated per prompt (0: no completions).
        batch_size: inputs per forward pass.
    """

    experiment = "echo"
    #: the runner loads no model: each of ``models`` is loaded here in turn
    loads_own_models = True

    models: tuple[ModelSpec, ...] = option((ModelSpec(),), flag="--model")
    sets: tuple[str, ...] = option(
        (),
        flag="--set",
        metavar="NAME|FILE",
        item="FILE",
        help="a built-in set (default echo-words; categories, months, ...) or a JSON/YAML/text file of words; "
        "repeatable",
    )
    leading_space: bool = option(True, flag="--no-leading-space", help="feed 'John' rather than ' John'")
    multi_token: MultiToken = option("mean", flag="")
    bos: Bos = option("both", help="BOS settings (default both)")
    top_k: int = option(5, minimum=1, metavar="K", help="next tokens recorded (default 5)")
    prompts: tuple[str, ...] = option(
        (DEFAULT_PROMPT,), flag="--prompt", metavar="TEXT", help="a free prompt to complete; repeatable"
    )
    max_new_tokens: int = option(8, minimum=0, metavar="N", help="tokens per completion (default 8; 0: none)")
    batch_size: int = option(64, minimum=1, metavar="B", help="inputs per forward pass")

    def validate(self) -> None:
        super().validate()
        if isinstance(self.models, (str, ModelSpec)) or not self.models:
            raise self.error(
                "models", self.models, "must be a non-empty tuple of ModelSpec (default: the default model)"
            )
        if not all(isinstance(m, ModelSpec) for m in self.models):
            raise self.error("models", self.models, "must hold ModelSpec values; use ModelSpec.of(source)")
        if self.max_new_tokens > MAX_NEW_TOKENS:
            raise self.error("max_new_tokens", self.max_new_tokens, f"is too many; at most {MAX_NEW_TOKENS}")
        if self.multi_token != "mean":
            raise self.error(
                "multi_token", self.multi_token, "does not apply to echo: a word of several tokens is fed whole"
            )
        if isinstance(self.prompts, str):
            raise self.error("prompts", self.prompts, "must be a tuple of prompts")
        for prompt in self.prompts:
            if not prompt.strip():
                raise self.error("prompts", prompt, "is empty; give some text")
        self.word_sets()

    def word_sets(self) -> dict[str, list[str]]:
        if not self.sets and not self.tokens:
            return TokenSetOptions.word_sets(replace(self, sets=DEFAULT_SETS))
        return super().word_sets()

    def run(self, model=None) -> EchoResult:
        from .echo import run_echo  # the experiment itself, with its heavy imports: only when it runs

        return run_echo(self, model)
