"""The config of ``layerscope patch`` (:func:`layerscope.patch`), declared apart from the experiment.

Importing this module imports no torch, transformers or pandas: the command line builds its options from it, and
``--help`` or a bad value answers before any model code loads. ``run`` imports the experiment itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..checkpoints.layout import model_depth
from ..errors import choices_text
from ..experiment import ExperimentConfig, option
from ..model_spec import ModelSpec
from ..tasks.pairs import Pair, is_pair_file, load_pair_file, pair_set

if TYPE_CHECKING:  # pragma: no cover
    from .patch import PatchResult


PART_CHOICES = ("resid", "attn", "mlp", "heads", "all")


def parse_parts(value) -> tuple[str, ...]:
    """``"resid,attn"`` or ``("resid", "attn")`` -> ``("resid", "attn")``; ``"all"`` -> every part."""
    pieces = str(value).split(",") if isinstance(value, str) else [p for v in value for p in str(v).split(",")]
    parts: list[str] = []
    for piece in (p.strip() for p in pieces):
        parts.extend(("resid", "attn", "mlp", "heads") if piece == "all" else [piece])
    return tuple(dict.fromkeys(parts))


@dataclass(frozen=True, kw_only=True)
class PatchConfig(ExperimentConfig):
    """What ``layerscope patch`` runs.

    Attributes:
        model: which model (default: the embedded Gemma 3 270M).
        clean, corrupt, answer, wrong: one pair (all four, or none when ``pairs`` is given).
        pairs: a built-in pair set (``names``, ``capitals``, ``arithmetic``, ``successor``) or a ``.csv``/``.jsonl``
            file with ``clean,corrupt,answer,wrong``.
        n: pairs taken from a built-in set (default 20) or a file (default: all).
        part: what is patched, one table and figure each: ``resid`` (the residual stream at ``embed``, ``0``..),
            ``attn``, ``mlp`` (each block's attention / MLP output, its residual addition), ``heads``.
        head_positions: ``all`` (a head patched at every position at once) or ``each`` (one cell per position).
        direction: ``denoise`` (clean into corrupt) or ``noise`` (corrupt into clean).
        metric: ``logit-diff``, ``prob`` or ``kl`` (from the clean run's distribution).
        seed: the order of a built-in set and the bootstrap's resamples.
        batch_size: cells per forward pass.
        source_model: the model whose runs give the patched activations (same tokenizer, depth and hidden size);
            None: ``model`` itself.
        method: ``exact`` (one rerun per cell) or ``attribution`` (the first-order estimate of every cell from one
            forward and one backward per pair, :mod:`layerscope.capture.attribution`).
        exact_sample: ``attribution``: the cells per part also patched exactly, for the estimate's rank correlation
            with exact patching (all of them when a part has no more; 0: none). Only cells at or after the first
            changed position count (before it both methods give the corrupt value); the sample is drawn with
            ``seed``.
    """

    experiment = "patch"

    model: ModelSpec = option(ModelSpec(), flag="--model")
    clean: str | None = option(None, metavar="TEXT", help="the clean prompt (with --corrupt, --answer, --wrong)")
    corrupt: str | None = option(None, metavar="TEXT", help="the corrupted prompt, of the clean one's token length")
    answer: str | None = option(None, metavar="TOKEN", help="the clean prompt's answer, one token (e.g. ' Mary')")
    wrong: str | None = option(None, metavar="TOKEN", help="the corrupt prompt's answer, one token (e.g. ' John')")
    pairs: str | None = option(
        None,
        metavar="SET|FILE",
        help="a built-in pair set (names, capitals, arithmetic, successor) or a .csv/.jsonl file with "
        "clean,corrupt,answer,wrong",
    )
    n: int | None = option(None, minimum=1, help="pairs taken from the set (default 20) or the file (default: all)")
    part: tuple[str, ...] = option(
        ("resid",),
        metavar="resid|attn|mlp|heads|all",
        help="what is patched: resid (residual stream at embed, 0..n-1), attn, mlp (each block's attention or MLP "
        "output, as its residual addition), heads; repeatable or comma-separated, one table and figure each",
    )
    head_positions: Literal["all", "each"] = option(
        "all", help="heads: patched at every position at once (all, default) or one cell per position (each)"
    )
    direction: Literal["denoise", "noise"] = option(
        "denoise", help="denoise: clean activations into the corrupt run (default); noise: corrupt into clean"
    )
    metric: Literal["logit-diff", "prob", "kl"] = option(
        "logit-diff",
        help="logit-diff: logit(answer) - logit(wrong) (default); prob: the answer's probability; kl: KL from "
        "the clean run's next-token distribution",
    )
    seed: int = option(0, minimum=0, help="order of a built-in set and seed of the bootstrap intervals (default 0)")
    batch_size: int = option(64, minimum=1, help="cells per forward pass (default 64)")
    method: Literal["exact", "attribution"] = option(
        "exact",
        help="exact: rerun the model per cell (default); attribution: the gradient estimate of every cell from one "
        "forward and one backward per pair (attribution patching), a fast first pass",
    )
    exact_sample: int = option(
        100,
        minimum=0,
        metavar="N",
        help="attribution: patch N cells per part (a random sample, drawn with --seed; all when fewer) exactly as "
        "well and print the estimate's Spearman rank correlation with exact patching (default 100; 0: none)",
    )
    source_model: ModelSpec | None = option(
        None,
        flag="--source-model",
        metavar="M",
        help="take the patched activations from model M's run (same tokenizer, depth and hidden size; e.g. the "
        "float32 original patched into its 4-bit copy); the clean and corrupt prompts may then be the same text",
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "part", parse_parts(self.part))
        if isinstance(self.pairs, os.PathLike):
            object.__setattr__(self, "pairs", os.fspath(self.pairs))

    def validate(self) -> None:
        super().validate()
        for part in self.part or ("",):
            if part not in PART_CHOICES:
                problem = f"names unknown part {part!r}; valid: {choices_text(PART_CHOICES)}"
                raise self.error("part", ",".join(self.part), problem)
        given = [name for name in ("clean", "corrupt", "answer", "wrong") if getattr(self, name) is not None]
        if self.pairs is not None and given:
            raise self.error(given[0], getattr(self, given[0]), "goes with one pair; give either it or --pairs")
        if self.pairs is None:
            missing = [name for name in ("clean", "corrupt", "answer", "wrong") if getattr(self, name) is None]
            if missing:
                raise self.error(
                    missing[0], None, "is missing; give --clean, --corrupt, --answer and --wrong, or --pairs"
                )
            for name in ("clean", "corrupt", "answer", "wrong"):
                if getattr(self, name) == "":
                    raise self.error(name, "", "is empty")
        elif is_pair_file(self.pairs):
            with self.checking("pairs"):
                load_pair_file(self.pairs)
        if self.source_model is not None:
            with self.checking("source_model"):
                self.source_model.check_source()
            depths = model_depth(self.model.source), model_depth(self.source_model.source)
            if None not in depths and depths[0] != depths[1]:
                raise self.error(
                    "source_model",
                    self.source_model.value,
                    f"has {depths[1]} blocks and the model {depths[0]}; the source model needs the same depth, "
                    "tokenizer and hidden size",
                )

    def model_specs(self) -> tuple[ModelSpec, ...]:
        return super().model_specs() + ((self.source_model,) if self.source_model is not None else ())

    def build_pairs(self) -> tuple[list[Pair], bool]:
        """The pairs, and whether they come from a built-in set (filtered to the model's tokenizer later)."""
        if self.pairs is None:
            return [Pair(self.clean, self.corrupt, self.answer, self.wrong)], False
        if not is_pair_file(self.pairs):
            return pair_set(self.pairs, self.n or 20, self.seed), True
        pairs = load_pair_file(self.pairs)
        return (pairs if self.n is None else pairs[: self.n]), False

    def run(self, model=None) -> PatchResult:
        """``model``: a loaded model, or ``[model, source_model]`` (either may be None: loaded here)."""
        source = None
        if isinstance(model, (list, tuple)):
            model, source = model
        from .patch import run_patch  # the experiment itself, with its heavy imports: only when it runs

        return run_patch(self, model, source)
