"""The config of ``layerscope stages`` (:func:`layerscope.stages`), declared apart from the experiment.

Importing this module imports no torch, transformers or pandas: the command line builds its options from it, and
``--help`` or a bad value answers before any model code loads. ``run`` imports the experiment itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..experiment import option
from .encode_config import EmbeddingConfig

if TYPE_CHECKING:  # pragma: no cover
    from .stages import StagesResult


@dataclass(frozen=True, kw_only=True)
class StagesConfig(EmbeddingConfig):
    """What ``layerscope stages`` runs (texts, file, model, batch size: see :class:`EmbeddingConfig`).

    Attributes:
        prompt_name: one of the model's own prompts (EmbeddingGemma: ``"query"``, ...).
        dims: 2 or 3 principal components per stage.
    """

    experiment = "stages"

    prompt_name: str | None = option(None, metavar="NAME", help="one of the model's own prompts (e.g. query)")
    dims: Literal[2, 3] = option(2, help="2 or 3 (default 2)")

    def validate(self) -> None:
        super().validate()
        n = len(self.all_texts())
        if n < self.dims:
            raise self.error("dims", self.dims, f"needs at least {self.dims} texts to span; got {n}")

    def run(self, model=None) -> StagesResult:
        from .stages import run_stages  # the experiment itself, with its heavy imports: only when it runs

        return run_stages(self, model)
