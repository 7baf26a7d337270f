"""The config of ``layerscope tokens`` (:func:`layerscope.tokens`), declared apart from the experiment.

Importing this module imports no torch, transformers or pandas: the command line builds its options from it, and
``--help`` or a bad value answers before any model code loads. ``run`` imports the experiment itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..errors import choices_text
from ..experiment import option
from ..model_spec import ModelSpec
from ..tokensets.options import TokenSetOptions

if TYPE_CHECKING:  # pragma: no cover
    from .tokens import TokensResult


@dataclass(frozen=True, kw_only=True)
class TokensConfig(TokenSetOptions):
    """What ``layerscope tokens`` runs.

    Attributes:
        model: which model (default: the embedded Gemma 3 270M).
        sets, tokens, leading_space, multi_token: which words (see :class:`TokenSetOptions`);
            with neither sets nor tokens, ``digits`` and ``number-words``.
        dims: 2 or 3 principal components.
        basis_set: fit the PCA on this set only and project every set onto it; None fits on all rows.
        ordered: more sets whose words are in order (a line joins their points, as for the built-in
            ordered sets: digits, number-words, months).
        normalize: project each word's vector scaled to unit length (its direction only), so the words whose
            rows have larger norms (often the rare ones) do not dominate the PCA; ``embeddings`` stay as read.
    """

    experiment = "tokens"

    model: ModelSpec = option(ModelSpec(), flag="--model")
    dims: Literal[2, 3] = option(3, help="2 or 3 (default 3)")
    basis_set: str | None = option(None, metavar="SET", help="fit the PCA on this set only, project the rest")
    ordered: tuple[str, ...] = option(
        (),
        metavar="SET",
        help="a set whose words are in order: a line joins its points (digits, number-words, months always are)",
    )
    normalize: bool = option(
        False, help="scale each word's vector to unit length before the PCA (directions only, not norms)"
    )

    def validate(self) -> None:
        super().validate()
        sets = self.word_sets()
        for name in self.ordered:
            if name not in sets:
                raise self.error("ordered", name, f"is not among the sets; valid: {choices_text(sets)}")
        if self.basis_set is not None and self.basis_set not in sets:
            raise self.error("basis_set", self.basis_set, f"is not among the sets; valid: {choices_text(sets)}")

    def word_sets(self) -> dict[str, list[str]]:
        if not self.sets and not self.tokens:
            return TokenSetOptions.word_sets(self.with_sets(("digits", "number-words")))
        return super().word_sets()

    def with_sets(self, sets: tuple[str, ...]) -> TokensConfig:
        from dataclasses import replace

        return replace(self, sets=sets)

    def run(self, model=None) -> TokensResult:
        from .tokens import run_tokens  # the experiment itself, with its heavy imports: only when it runs

        return run_tokens(self, model)
