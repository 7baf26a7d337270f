"""The config of ``layerscope layers`` (:func:`layerscope.layers`), declared apart from the experiment.

Importing this module imports no torch, transformers or pandas: the command line builds its options from it, and
``--help`` or a bad value answers before any model code loads. ``run`` imports the experiment itself.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..capture.contexts import context_problem
from ..capture.layer_spec import (
    check_layers_syntax,
)
from ..capture.storage import parse_budget
from ..errors import LayerscopeError
from ..experiment import option
from ..model_spec import ModelSpec, specs_argv
from ..tokensets.options import TokenSetOptions

if TYPE_CHECKING:  # pragma: no cover
    from .layers import LayersResult


BASIS_MODES = ("layer", "embedding")


DEFAULT_MODELS: tuple[ModelSpec, ...] = (ModelSpec(),)


@dataclass(frozen=True, kw_only=True)
class LayersConfig(TokenSetOptions):
    """What ``layerscope layers`` runs.

    Attributes:
        models: the models, shown side by side (loaded one at a time; default: the embedded Gemma 3 270M).
        sets, tokens, leading_space, multi_token: which words (see :class:`TokenSetOptions`);
            with neither sets nor tokens, ``categories``.
        basis: ``"layer"`` (each layer its own PCA), ``"embedding"`` (every layer on the embedding output's
            PCA) or a layer name (``embed``, a block number such as ``6``, ``-1`` for the last block, ``norm``).
        layers: ``"all"`` (``embed`` and every block) or names such as ``"embed,0,6,-1"``.
        context: ``"bos"`` (the word alone after BOS; for an encoder, inside its special tokens,
            ``[CLS] word [SEP]``), ``"nobos"``, or a template with ``{word}``.
        dims: 2 or 3 principal components.
        batch_size: words per forward pass.
        memory_budget: bytes (or ``"512MB"``); captures above it stream to a memory-mapped file.
    """

    experiment = "layers"

    models: tuple[ModelSpec, ...] = option(DEFAULT_MODELS, flag="--model")
    basis: str = option(
        "layer",
        metavar="layer|embedding|LAYER",
        help="'layer': a PCA per layer (default); 'embedding': every layer on the embedding output's "
        "PCA; LAYER: every layer on that layer's PCA (embed, a block such as 6, -1 the last)",
    )
    dims: Literal[2, 3] = option(2, help="2 or 3 principal components (default 2)")
    layers: str = option(
        "all",
        metavar="all|embed,0,6,-1",
        help="layers to show: 'all' (default) or names: 'embed' (the embedding output), block "
        "numbers 0..n-1 (negative from the end: -1 is the last block), 'norm'",
    )
    context: str = option(
        "bos",
        metavar="bos|nobos|TEMPLATE",
        help="each word alone after BOS (default), alone without BOS, or in a template such as 'The word is {word}'",
    )
    batch_size: int = option(64, minimum=1, help="words per forward pass (default 64)")
    memory_budget: int | str | None = option(
        None,
        metavar="SIZE",
        help="captures larger than this (e.g. 512MB) stream to a memory-mapped file (default 2GiB)",
    )

    def validate(self) -> None:
        super().validate()
        if not self.models or not all(isinstance(m, ModelSpec) for m in self.models):
            raise self.error("models", self.models, "must be a non-empty tuple of ModelSpec")
        check_basis_syntax(self)
        check_layers_field(self)
        problem = context_problem(self.context)
        if problem:
            raise self.error("context", self.context, problem)
        check_memory_budget(self)
        self.word_sets()

    def word_sets(self) -> dict[str, list[str]]:
        if not self.sets and not self.tokens:
            return TokenSetOptions.word_sets(dataclasses.replace(self, sets=("categories",)))
        return super().word_sets()

    def command(self) -> list[str]:
        """The command line; every model is one ``--model`` (``default`` for the default model).

        The command line gives every model the same ``--dtype``/``--device-map``/``--trust-remote-code``:
        those of the first model.
        """
        argv = super(LayersConfig, dataclasses.replace(self, models=DEFAULT_MODELS)).command()
        if self.models == DEFAULT_MODELS:
            return argv
        return argv[:2] + specs_argv(self.models) + argv[2:]  # the models first, as a person writes them

    def run(self, model=None) -> LayersResult:
        from .layers import run_layers  # the experiment itself, with its heavy imports: only when it runs

        return run_layers(self, model)


def check_basis_syntax(config) -> None:
    """``layer``, ``embedding`` or one layer name (the range needs the model)."""
    text = str(config.basis).strip()
    if text in BASIS_MODES:
        return
    if "," in text:
        raise config.error("basis", config.basis, "is one layer, not several; give 'layer', 'embedding' or e.g. 6")
    try:
        check_layers_syntax(text)
    except LayerscopeError:
        raise config.error(
            "basis",
            config.basis,
            "is not valid; give 'layer' (a PCA per layer), 'embedding' (the embedding output's PCA) "
            "or a layer name such as embed, 6 or -1",
        ) from None


def check_layers_field(config) -> None:
    """The syntax of ``config.layers`` (names and integers; the range needs the model)."""
    try:
        check_layers_syntax(config.layers)
    except LayerscopeError as exc:
        raise config.error("layers", config.layers, str(exc)) from None


def check_memory_budget(config) -> None:

    if config.memory_budget is None:
        return
    try:
        parse_budget(config.memory_budget)
    except LayerscopeError:
        raise config.error(
            "memory_budget",
            config.memory_budget,
            "is not a size of at least 0 bytes; give bytes or e.g. '512MB', '2GiB'",
        ) from None
