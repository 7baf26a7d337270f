"""What a sensitivity run found: the tables, the figures, the recipe and one sentence from the numbers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd

from ..experiment import Result


@dataclass(kw_only=True, repr=False)
class SensitivityResult(Result):
    """The outcome of a sensitivity run.

    Attributes:
        parts: ``parts.csv``, one row per part: ``block`` (empty: the embedding), ``kind``, ``part``, ``module``,
            ``parameters``, ``extra_bytes`` (its cost at ``keep_bits`` beyond the base), ``kl`` (mean KL(reference
            || restored) over prompts) with ``kl_low``/``kl_high`` (bootstrap 95%; empty under 5 prompts),
            ``kl_removed`` and ``share_removed`` (of the quantized model's KL), ``top1_agreement``.
        activations: ``activations.csv``: per block (``layer``, ``depth``), the same with its output restored
            from the reference run, and as ``weights_kl`` .. ``weights_top1_agreement`` with its weights restored
            (every part of the block at once).
        curve: ``curve.csv``: ``method`` (uniform or recipe), ``label``, ``bytes``, ``relative_size``, ``kl``
            with its interval, ``top1_agreement``: each measured on a real model (no estimate).
        chosen: ``recipe.csv``: the recipe's parts in the order taken, with their bytes and KL removed alone.
        prompts: ``prompts.csv``: per prompt, its tokens and the KL and agreement of the quantized model (and of
            the recipe).
        recipe: the :class:`~layerscope.convert.recipe.Recipe` (with ``budget``), written as ``recipe.json``.
        numbers: the run's key numbers (``run.json``).
    """

    parts: pd.DataFrame
    activations: pd.DataFrame
    curve: pd.DataFrame
    chosen: pd.DataFrame
    prompts: pd.DataFrame
    recipe: object = None
    numbers: dict = field(default_factory=dict)

    main_file: ClassVar[str] = "sensitivity_parts.html"

    def tables(self) -> dict[str, pd.DataFrame]:
        out = {"parts": self.parts, "prompts": self.prompts}
        if len(self.activations):
            out["activations"] = self.activations
        if len(self.curve):
            out["curve"] = self.curve
            out["recipe"] = self.chosen
        return out

    def kinds(self) -> list[str]:
        from ..capture.restoration import kind_rank

        kinds = [k for k in dict.fromkeys(self.parts["kind"]) if k != "embed"]
        return (["embed"] if "embed" in set(self.parts["kind"]) else []) + sorted(kinds, key=kind_rank)

    def _grid(self):
        from ..render.sensitivity import kl_removed_grid

        embed = self.parts[self.parts["block"].isna()]
        title = f"{self._base()} KL removed per part ({self.n_prompts} prompts)"
        if len(embed):
            title += f"; embedding: {float(embed['share_removed'].iloc[0]):.0%}"
        kinds = [k for k in self.kinds() if k != "embed"]
        return kl_removed_grid(self.parts, kinds, title=title)

    def _curve(self):
        from ..render.sensitivity import size_curve

        title = f"KL against size: recipes vs uniform ({self.n_prompts} prompts)"
        return size_curve(self.curve, title=title)

    def figures(self) -> dict:
        out = {"sensitivity_parts": lambda: self._grid().plotly()}
        if len(self.curve):
            out["sensitivity_curve"] = lambda: self._curve().plotly()
        return out

    def images(self) -> dict:
        out = {"sensitivity_parts": lambda: self._grid().png()}
        if len(self.curve):
            out["sensitivity_curve"] = lambda: self._curve().png()
        return out

    def texts(self) -> dict[str, str]:
        if self.recipe is None:
            return {}
        from ..convert.recipe import RECIPE_NAME

        return {RECIPE_NAME: self.recipe_text()}

    def recipe_text(self) -> str:
        """``recipe.json``'s text ('' without a recipe)."""
        if self.recipe is None:
            return ""
        n_blocks = int(self.parts["block"].dropna().max()) + 1 if self.parts["block"].notna().any() else None
        return json.dumps(self.recipe.to_json(n_blocks=n_blocks), indent=2) + "\n"

    def record(self) -> dict:
        return {**self.numbers, "findings": self.findings()}

    @property
    def n_prompts(self) -> int:
        return int(self.numbers.get("n_prompts", len(self.prompts)))

    def _base(self) -> str:
        bits = self.numbers.get("base_bits")
        return f"{bits}-bit" if bits else "quantized"

    @classmethod
    def from_files(cls, config, tables, arrays, record, run_dir) -> SensitivityResult:
        """A saved sensitivity run (see :func:`layerscope.load_run`), its recipe read back from ``recipe.json``."""
        from ..convert.recipe import RECIPE_NAME, read_recipe

        recipe = read_recipe(run_dir / RECIPE_NAME) if (run_dir / RECIPE_NAME).is_file() else None
        numbers = {k: v for k, v in record.items() if k in _NUMBER_KEYS}
        return cls(
            config=config,
            parts=tables["parts"],
            activations=tables.get("activations", pd.DataFrame()),
            curve=tables.get("curve", pd.DataFrame()),
            chosen=tables.get("recipe", pd.DataFrame()),
            prompts=tables["prompts"],
            recipe=recipe,
            numbers=numbers,
            **cls.saved(record),
        )

    def findings(self) -> dict[str, str]:
        """``{figure stem: sentence}``: the part that removes most and, with a recipe, what the recipe does."""
        out = {}
        n = self.n_prompts
        total = self.numbers.get("quantized_kl", float("nan"))
        if n < 5:
            interval = " (too few inputs for an interval)"
        else:
            interval = (
                f" (95% interval {self.numbers['quantized_kl_low']:.3g} to {self.numbers['quantized_kl_high']:.3g})"
            )
        head = (
            f"over {n} prompts the {self._base()} model has mean KL {total:.3g} nats{interval} and agrees on the top "
            f"token for {self.numbers.get('quantized_top1_agreement', float('nan')):.0%}"
        )
        if len(self.parts):
            best = self.parts.loc[self.parts["share_removed"].idxmax()]
            where = "the embedding" if pd.isna(best["block"]) else f"block {int(best['block'])}'s {best['kind']}"
            cost = ""
            uniform = self.numbers.get("uniform_bytes") or 0
            if uniform and best["extra_bytes"] > 0:
                cost = f" for {best['extra_bytes'] / uniform:.1%} more bytes at {self.numbers.get('keep_bits')} bits"
            out["sensitivity_parts"] = (
                f"{head}; restoring {where} alone removes {best['share_removed']:.0%} of it{cost}"
            )
        recipe = self.curve[self.curve["method"] == "recipe"] if len(self.curve) else self.curve
        if len(recipe) and self.recipe is not None:
            notes = self.recipe.notes
            share = notes.get("share_removed")
            out["sensitivity_curve"] = (
                f"the recipe ({len(self.recipe.overrides)} parts at {self.numbers.get('keep_bits')} bits, "
                f"{notes.get('extra_bytes', 0) / max(self.numbers.get('uniform_bytes') or 1, 1):.1%} more bytes) has "
                f"mean KL {notes.get('recipe_kl', float('nan')):.3g} against {notes.get('uniform_kl', float('nan')):.3g} "
                f"uniform"
                + ("" if share is None else f": it removes {share:.0%} of the KL")
                + f"; top-1 agreement {notes.get('uniform_top1_agreement', float('nan')):.0%} -> "
                f"{notes.get('recipe_top1_agreement', float('nan')):.0%} over {n} prompts (the prompts it was chosen on)"
            )
        return out

    def summary(self) -> list[str]:
        lines = list(self.findings().values())
        if self.recipe is not None:
            lines.append("recipe: " + " ".join(self.recipe.to_json().get("llama_cpp_tensor_type", [])[:8]))
        return lines


_NUMBER_KEYS = (
    "n_prompts",
    "base_bits",
    "group_size",
    "keep_bits",
    "uniform_bytes",
    "budget_bytes",
    "quantized_kl",
    "quantized_kl_low",
    "quantized_kl_high",
    "quantized_top1_agreement",
)
