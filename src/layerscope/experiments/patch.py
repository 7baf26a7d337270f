"""Activation patching: where, in the forward pass, the information that decides an answer is carried.

Flow: pairs (one ``--clean/--corrupt`` pair, a built-in set or a file; :mod:`layerscope.tasks.pairs`) -> token
ids (both prompts of a pair one length, the answer and the wrong token one token each) ->
:class:`~layerscope.capture.patching.PatchEngine` per pair (every cell of every part) -> the metric per cell
-> the mean over pairs with bootstrap intervals (:mod:`layerscope.analysis.patching`) -> ``patch.csv`` and
figures.

``denoise`` (default) copies the clean run's activation into the corrupt run; ``noise`` the corrupt run's into
the clean run. ``normalized`` is ``(patched - corrupt) / (clean - corrupt)`` either way: the share of the
answer that comes back (denoise) or that survives (noise).

Across models (``--source-model M``, same tokenizer, depth and hidden size): the clean run is ``M``'s, the
corrupt run (the one patched) the model's: e.g. a float32 reference's activations patched into its 4-bit copy.
The two prompts may then be the same text (the difference is the model). ``noise`` patches ``M``'s corrupt run
into the model's clean run. ``clean_value`` and ``corrupt_value`` are those two runs' metrics.

A pair set shares one token length: the positions of its pairs are averaged index by index. A built-in set
keeps the pairs of its most common length (and one-token answers) under the model's tokenizer, and records
how many it left out; a file's pair of another length is refused, naming it.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from .. import progress
from ..analysis.patching import summarize
from ..analysis.rank_agreement import RankAgreement, rank_agreement, sample_cells
from ..capture.attribution import AttributionPatching
from ..capture.layer_spec import layer_name
from ..capture.patching import Cell, PairIds, PatchEngine, check_source_model, metric_values
from ..errors import LayerscopeError
from ..experiment import Result
from ..model_spec import ModelSpec, unique_name
from ..models import Model, require_lm_head
from ..models.loading import given_or_loaded
from ..render import patching as render
from ..render.heatmap import visible_token
from ..rundir import model_record
from ..runner import execute
from ..tasks.pairs import Pair
from .patch_config import PART_CHOICES, PatchConfig, parse_parts  # noqa: F401  (declared in a light module)

__all__ = ["PatchConfig", "PatchResult", "patch", "run_patch"]

PART_NAMES = {"resid": "residual stream", "attn": "attention output", "mlp": "MLP output", "heads": "attention heads"}
METRIC_TEXT = {
    "logit-diff": "logit(answer) - logit(wrong)",
    "prob": "probability of the answer",
    "kl": "KL divergence from the clean run's next-token distribution",
}


# ----- tokenizing pairs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Encoded:
    pair: Pair
    clean: tuple[int, ...]
    corrupt: tuple[int, ...]
    answer: int
    wrong: int


def _one_token(model: Model, prompt: str, text: str) -> list[int]:
    """``text``'s ids as it follows ``prompt`` (the ids of ``prompt + text`` after the prompt's)."""
    head, whole = model.encode(prompt), model.encode(prompt + text)
    return (
        whole[len(head) :] if whole[: len(head)] == head and len(whole) > len(head) else model.encode(text, bos=False)
    )


def encode_pair(model: Model, pair: Pair, *, same: bool = False) -> _Encoded:
    """The pair's ids; :class:`LayerscopeError` naming the pair when its prompts' lengths differ, they are the
    same tokens (unless ``same``: across two models), or the answer or the wrong token is not one token."""
    clean, corrupt = model.encode(pair.clean), model.encode(pair.corrupt)
    if len(clean) != len(corrupt):
        raise LayerscopeError(
            f"pair {pair.label()} tokenizes to {len(clean)} and {len(corrupt)} tokens; the two prompts must have "
            "one length (change words that tokenize alike)"
        )
    if clean == corrupt and not same:
        raise LayerscopeError(
            f"pair {pair.label()}: the two prompts are the same tokens (allowed only with a source model)"
        )
    ids = {}
    for name, prompt in (("answer", pair.clean), ("wrong", pair.corrupt)):
        text = getattr(pair, name)
        found = _one_token(model, prompt, text)
        if len(found) != 1:
            pieces = ", ".join(repr(t) for t in model.token_strings(found))
            raise LayerscopeError(
                f"{name} {text!r} of pair {pair.label()} is {len(found)} tokens ({pieces}); give one token"
            )
        ids[name] = found[0]
    if ids["answer"] == ids["wrong"] and not same:
        raise LayerscopeError(f"pair {pair.label()}: the answer and the wrong token are the same token")
    return _Encoded(pair, tuple(clean), tuple(corrupt), ids["answer"], ids["wrong"])


def encode_pairs(model: Model, pairs: list[Pair], builtin: bool, *, same: bool = False) -> tuple[list[_Encoded], int]:
    """Every pair's ids, all of one length; a built-in set keeps the usable pairs of its most common length
    (returns how many it left out), a user's pair that does not fit is refused. ``same``: a pair's two prompts
    may be the same tokens (across two models)."""
    if not builtin:
        encoded = [encode_pair(model, p, same=same) for p in pairs]
        for e in encoded[1:]:
            if len(e.clean) != len(encoded[0].clean):
                raise LayerscopeError(
                    f"pair {e.pair.label()} is {len(e.clean)} tokens, the first pair {len(encoded[0].clean)}; "
                    "the pairs of one run are averaged position by position and need one length"
                )
        return encoded, 0
    usable = []
    for p in pairs:
        try:
            usable.append(encode_pair(model, p, same=same))
        except LayerscopeError:
            continue
    if not usable:
        raise LayerscopeError("no pair of the set fits this model's tokenizer (one length, one-token answers)")
    length = Counter(len(e.clean) for e in usable).most_common(1)[0][0]
    kept = [e for e in usable if len(e.clean) == length]
    return kept, len(pairs) - len(kept)


# ----- the result ----------------------------------------------------------------------------------------
@dataclass(kw_only=True, repr=False)
class PatchResult(Result):
    """The outcome of a patching run.

    Attributes:
        cells: ``patch.csv``, one row per cell: ``part`` (resid, attn, mlp, heads), ``layer`` (``embed``, ``0``..),
            ``depth`` (0 for embed, ``k + 1`` for block ``k``), ``position`` (the index in the input ids, BOS = 0;
            empty: every position), ``token`` (the first pair's clean token there), ``head`` (heads only),
            ``value`` (the metric's mean over pairs), ``normalized`` ((value - corrupt) / (clean - corrupt)),
            ``ci_low``/``ci_high`` (its bootstrap 95% interval; empty under 5 pairs), ``n_pairs``.
        pairs: one row per pair: ``clean, corrupt, answer, wrong, clean_value, corrupt_value, first_changed``.
        tokens: the first pair's clean tokens; ``changed``: the positions where some pair's prompts differ.
        clean_value, corrupt_value: the metric of the unpatched runs (means over pairs).
        left_out: pairs of a built-in set left out (another length, or answers of several tokens).
        agreement: ``--method attribution``: per part, Spearman's rank correlation of the attribution estimate
            with exact patching (:class:`~layerscope.analysis.rank_agreement.RankAgreement`), over the part's cells
            at or after the first changed position (before it both methods give the corrupt value exactly), or a
            seeded random sample of ``exact_sample`` of them; empty for exact patching or ``exact_sample=0``.
        exact_sample: the compared cells (``exact_sample.csv``): ``part, layer, depth, position, token, head``,
            ``attribution`` (the estimate's mean over pairs, as ``value``) and ``exact`` (exact patching's); None
            when not compared.
    """

    config: PatchConfig
    cells: pd.DataFrame
    pairs: pd.DataFrame
    tokens: list[str]
    changed: list[int]
    clean_value: float
    corrupt_value: float
    left_out: int = 0
    agreement: dict[str, RankAgreement] = field(default_factory=dict)
    exact_sample: pd.DataFrame | None = None

    main_file: ClassVar[str] = "patch_resid.html"

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    def parts(self) -> list[str]:
        return list(dict.fromkeys(self.cells["part"]))

    def title(self, part: str) -> str:
        model = ", ".join(self.model_names) or "model"
        what = f"{self.n_pairs} pairs" if self.n_pairs > 1 else "one pair"
        arrow = "clean into corrupt" if self.config.direction == "denoise" else "corrupt into clean"
        if len(self.model_names) > 1:
            model, source = self.model_names[0], self.model_names[1]
            arrow = f"from {source}'s {arrow.replace(' into ', ' run into the ')} run"
        if self.config.method == "attribution":
            arrow += ", attribution estimate"
        return f"{model}: {PART_NAMES[part]} patched {arrow} ({what}; {METRIC_TEXT[self.config.metric]}, normalized)"

    def tables(self) -> dict[str, pd.DataFrame]:
        tables = {"patch": self.cells, "pairs": self.pairs}
        if self.exact_sample is not None:
            tables["exact_sample"] = self.exact_sample
        return tables

    def descriptions(self) -> dict:
        """``{name: () -> description}``: each figure's one description (a
        :class:`~layerscope.render.matrix_figure.MatrixFigure` per part, a
        :class:`~layerscope.render.line_figure.LineFigure` over the blocks), from which its HTML and PNG are drawn."""
        out = {}
        for part in self.parts():
            rows = self.cells[self.cells["part"] == part]
            if part == "heads":
                out["patch_heads"] = lambda rows=rows: render.heads_grid(rows, title=self.title("heads"))
            else:
                out[f"patch_{part}"] = lambda rows=rows, part=part: render.position_grid(
                    rows, self.tokens, self.changed, title=self.title(part)
                )
        if {"attn", "mlp"} & set(self.parts()):
            out["patch_layers"] = lambda: render.layer_lines(self.cells, title=self._layers_title())
        return out

    def figures(self) -> dict:
        return {name: lambda describe=describe: describe().plotly() for name, describe in self.descriptions().items()}

    def _layers_title(self) -> str:
        model = ", ".join(self.model_names) or "model"
        return f"{model}: the most any one position gives back, per block ({METRIC_TEXT[self.config.metric]})"

    def images(self) -> dict:
        return {name: lambda describe=describe: describe().png() for name, describe in self.descriptions().items()}

    def record(self) -> dict:
        return {
            "n_pairs": self.n_pairs,
            "left_out": self.left_out,
            "clean_value": self.clean_value,
            "corrupt_value": self.corrupt_value,
            "tokens": self.tokens,
            "changed": self.changed,
            **(
                {"rank_correlation": {part: a.record() for part, a in self.agreement.items()}}
                if self.config.method == "attribution"
                else {}
            ),
            "findings": self.findings(),
        }

    @classmethod
    def from_files(cls, config, tables, arrays, record, run_dir) -> PatchResult:
        """A saved patching run (see :func:`layerscope.load_run`)."""
        return cls(
            config=config,
            cells=tables["patch"],
            pairs=tables["pairs"],
            tokens=[str(t) for t in record.get("tokens", [])],
            changed=[int(p) for p in record.get("changed", [])],
            clean_value=float(record["clean_value"]),
            corrupt_value=float(record["corrupt_value"]),
            left_out=int(record.get("left_out", 0)),
            agreement={
                str(part): RankAgreement.from_record(data)
                for part, data in (record.get("rank_correlation") or {}).items()
                if isinstance(data, dict)
            },
            exact_sample=tables.get("exact_sample"),
            **cls.saved(record),
        )

    def findings(self) -> dict[str, str]:
        """``{figure stem: sentence}``: per part, the cell that gives back most, with its interval and how many
        cells give back more than half; "too few pairs" for an interval under 5 pairs. An attribution run adds
        the part's rank correlation with exact patching."""
        out = {}
        few = self.n_pairs < 5
        what = f"over {self.n_pairs} pairs" if self.n_pairs > 1 else "on one pair"
        for part in self.parts():
            rows = self.cells[(self.cells["part"] == part) & self.cells["normalized"].notna()]
            if not len(rows):
                continue
            best = rows.loc[rows["normalized"].idxmax()]
            where = _cell_phrase(part, best, visible_token)
            interval = (
                " (too few pairs for an interval)"
                if few
                else f" (95% interval {best['ci_low']:.2f} to {best['ci_high']:.2f})"
            )
            half = int((rows["normalized"] > 0.5).sum())
            verb = "gives back" if self.config.direction == "denoise" else "keeps"
            out["patch_heads" if part == "heads" else f"patch_{part}"] = (
                f"{what}, patching {where} {verb} {best['normalized']:.2f} of the clean-corrupt difference"
                f"{interval}; {half} of {len(rows)} cells exceed one half"
            )
        for part, agreement in self.agreement.items():
            stem = "patch_heads" if part == "heads" else f"patch_{part}"
            sentence = f"rank correlation of the attribution estimate with exact patching: {agreement.sentence()}"
            out[stem] = f"{out[stem]}; {sentence}" if stem in out else sentence[0].upper() + sentence[1:]
        best_of = []
        for part in ("attn", "mlp"):
            rows = self.cells[(self.cells["part"] == part) & self.cells["normalized"].notna()]
            if len(rows):
                best = rows.loc[rows["normalized"].idxmax()]
                what = "attention" if part == "attn" else "MLP"
                best_of.append(
                    f"of the {what} outputs, {_cell_phrase(part, best, visible_token)} gives back the most "
                    f"({best['normalized']:.2f})"
                )
        if best_of:
            out["patch_layers"] = "; ".join(best_of)
        return out

    def summary(self) -> list[str]:
        metric = self.config.metric
        line = (
            f"{self.n_pairs} pair{'s' if self.n_pairs != 1 else ''}"
            + (f" ({self.left_out} of the set left out)" if self.left_out else "")
            + f", {metric}: clean {self.clean_value:.4g}, corrupt {self.corrupt_value:.4g}"
        )
        if self.config.method == "attribution" and not self.agreement:
            line += "; not compared with exact patching (exact_sample 0)"
        return [line, *self.findings().values()]


def _cell_phrase(part: str, row, visible) -> str:
    at = (
        "every position"
        if pd.isna(row["position"])
        else f"position {int(row['position'])} ({visible(str(row['token']))!r})"
    )
    layer = str(row["layer"])
    if part == "resid":
        site = "the embedding output" if layer == "embed" else f"block {layer}'s output"
    elif part == "heads":
        site = f"head {int(row['head'])} of block {layer}"
    else:
        site = f"block {layer}'s {'attention' if part == 'attn' else 'MLP'} output"
    return f"{site} at {at}"


# ----- the run -------------------------------------------------------------------------------------------
def _cells(engine, parts: tuple[str, ...], length: int, head_positions: str) -> list:

    cells = []
    for part in parts:
        for layer in engine.sites_of(part):
            if part == "heads":
                positions = [None] if head_positions == "all" else list(range(length))
                cells += [Cell(part, layer, p, h) for h in range(engine.n_heads) for p in positions]
            else:
                cells += [Cell(part, layer, p) for p in range(length)]
    return cells


def _exact_values(model, ids: PairIds, parts, cells: list, config: PatchConfig, source_model, engine=None):
    """``((cells,) metric of each cell patched, clean value, corrupt value)`` of exact patching of one pair;
    ``engine``: the pair's :class:`PatchEngine` when already built."""
    full_vocab = config.metric != "logit-diff"
    if engine is None:
        engine = PatchEngine(
            model, ids, parts=parts, full_vocab=full_vocab, batch_size=config.batch_size, source_model=source_model
        )
    scores = engine.run_cells(cells, config.direction)
    clean, corrupt = engine.ends(config.direction)
    args = (clean.scores[None], config.metric, full_vocab, ids.answer, ids.wrong)
    return (
        metric_values(scores, *args),
        float(metric_values(clean.scores[None], *args)[0]),
        float(metric_values(corrupt.scores[None], *args)[0]),
    )


def _exact_sample(cells: list, first_changed: int, size: int, seed: int) -> dict[str, tuple[np.ndarray, int]]:
    """``{part: (indices into cells, of how many)}``: per part, the cells at or after ``first_changed`` (or at
    every position), all of them or a random sample of ``size`` (``numpy.random.default_rng(seed)``)."""
    if size <= 0:
        return {}
    out = {}
    for part in dict.fromkeys(c.part for c in cells):
        eligible = np.array(
            [i for i, c in enumerate(cells) if c.part == part and (c.position is None or c.position >= first_changed)],
            dtype=np.int64,
        )
        out[part] = (eligible[sample_cells(len(eligible), size, seed)], len(eligible))
    return out


def _agreement(table: pd.DataFrame, sample: dict, exact_values: list, seed: int):
    """``({part: RankAgreement}, exact_sample table or None)`` from the attribution table and the sampled
    cells' exact values (``(pairs, sampled cells)``, the parts in ``sample``'s order)."""
    if not sample:
        return {}, None
    exact = np.stack(exact_values).mean(axis=0)
    agreement, rows, at = {}, [], 0
    for part, (indices, of_cells) in sample.items():
        estimate, truth = table["value"].to_numpy()[indices], exact[at : at + len(indices)]
        at += len(indices)
        agreement[part] = rank_agreement(estimate, truth, of_cells=of_cells, seed=seed)
        rows.append(
            table.iloc[indices][["part", "layer", "depth", "position", "token", "head"]].assign(
                attribution=estimate, exact=truth
            )
        )
    return agreement, pd.concat(rows, ignore_index=True)


def run_patch(config: PatchConfig, model: Model | None = None, source_model: Model | None = None) -> PatchResult:
    """Patch every cell of ``config.part`` for every pair; no files written. ``source_model``: the loaded
    ``config.source_model`` (loaded here when None and the config names one)."""
    timings: dict[str, float] = {}
    model = given_or_loaded(config.model, model, timings)
    require_lm_head(model, "patch")
    records = [model_record(model)]
    parts = tuple(p for p in ("resid", "attn", "mlp", "heads") if p in config.part)
    if config.source_model is not None or source_model is not None:
        spec = config.source_model if config.source_model is not None else ModelSpec.of(source_model)
        source_model = given_or_loaded(spec, source_model, timings)
        require_lm_head(source_model, "patch")
        with config.checking("source_model"):
            check_source_model(model, source_model, heads="heads" in parts)
        records.append(model_record(source_model, unique_name(source_model.name, {model.name})))
    pairs, builtin = config.build_pairs()
    with config.checking("pairs" if config.pairs is not None else "clean"):
        encoded, left_out = encode_pairs(model, pairs, builtin, same=source_model is not None)
    full_vocab = config.metric != "logit-diff"
    changed = sorted({p for e in encoded for p, (a, b) in enumerate(zip(e.clean, e.corrupt)) if a != b})
    # cells before this position hold the corrupt value in both methods (across two models, none do)
    first_changed = changed[0] if changed and source_model is None else 0
    start = time.perf_counter()
    values, exact_values, clean_values, corrupt_values, firsts = [], [], [], [], []
    cells, sample = None, {}
    for e in progress.track(encoded, "Patching pairs", total=len(encoded)):
        ids = PairIds(e.clean, e.corrupt, e.answer, e.wrong)
        if config.method == "attribution":
            engine = AttributionPatching(model, ids, parts=parts, metric=config.metric, source_model=source_model)
            if cells is None:
                cells = _cells(engine, parts, len(e.clean), config.head_positions)
                sample = _exact_sample(cells, first_changed, config.exact_sample, config.seed)
            values.append(engine.values(cells, config.direction))
            clean_value, corrupt_value = engine.end_values(config.direction)
            if sample:
                chosen = [cells[i] for indices, _ in sample.values() for i in indices]
                exact_values.append(_exact_values(model, ids, parts, chosen, config, source_model)[0])
        else:
            engine = PatchEngine(
                model, ids, parts=parts, full_vocab=full_vocab, batch_size=config.batch_size, source_model=source_model
            )
            if cells is None:
                cells = _cells(engine, parts, len(e.clean), config.head_positions)
            patched, clean_value, corrupt_value = _exact_values(model, ids, parts, cells, config, source_model, engine)
            values.append(patched)
        clean_values.append(clean_value)
        corrupt_values.append(corrupt_value)
        firsts.append(engine.pair.changed[0] if engine.pair.changed else -1)
    timings["compute"] = time.perf_counter() - start
    summary = summarize(np.stack(values), np.array(clean_values), np.array(corrupt_values), seed=config.seed)
    first = encoded[0]
    tokens = model.token_strings(list(first.clean))
    table = pd.DataFrame(
        {
            "part": [c.part for c in cells],
            "layer": [layer_name(c.layer) if c.part == "resid" else str(c.layer) for c in cells],
            "depth": [c.layer if c.part == "resid" else c.layer + 1 for c in cells],
            "position": pd.array([c.position for c in cells], dtype="Int64"),
            "token": [tokens[c.position] if c.position is not None else "" for c in cells],
            "head": pd.array([c.head for c in cells], dtype="Int64"),
            "value": summary["value"],
            "normalized": summary["normalized"],
            "ci_low": summary["ci_low"],
            "ci_high": summary["ci_high"],
            "n_pairs": len(encoded),
        }
    )
    agreement, compared = _agreement(table, sample, exact_values, config.seed)
    pair_rows = pd.DataFrame(
        {
            "clean": [e.pair.clean for e in encoded],
            "corrupt": [e.pair.corrupt for e in encoded],
            "answer": [e.pair.answer for e in encoded],
            "wrong": [e.pair.wrong for e in encoded],
            "clean_value": clean_values,
            "corrupt_value": corrupt_values,
            "first_changed": firsts,
        }
    )
    return PatchResult(
        config=config,
        cells=table,
        pairs=pair_rows,
        tokens=tokens,
        changed=changed,
        clean_value=float(np.mean(clean_values)),
        corrupt_value=float(np.mean(corrupt_values)),
        left_out=left_out,
        agreement=agreement,
        exact_sample=compared,
        models=records,
        timings=timings,
    )


def patch(
    clean: str | None = None,
    corrupt: str | None = None,
    *,
    answer: str | None = None,
    wrong: str | None = None,
    pairs: str | os.PathLike | None = None,
    n: int | None = None,
    part: str | tuple[str, ...] = "resid",
    head_positions: str = "all",
    direction: str = "denoise",
    metric: str = "logit-diff",
    seed: int = 0,
    batch_size: int = 64,
    method: str = "exact",
    exact_sample: int = 100,
    model: ModelSpec | Model | str | None = None,
    source_model: ModelSpec | Model | str | None = None,
    out: str | Path | None = None,
    force: bool = False,
) -> PatchResult:
    """Activation patching of one clean/corrupt pair or a pair set: how much of the answer each activation carries.

    Args:
        clean, corrupt, answer, wrong: one pair (the prompts of one token length; answer and wrong one token).
        pairs: instead, a built-in set (``names``, ``capitals``, ``arithmetic``, ``successor``) or a
            ``.csv``/``.jsonl`` file with ``clean,corrupt,answer,wrong``.
        part: ``resid``, ``attn``, ``mlp``, ``heads`` (several, comma-separated or a tuple, or ``all``).
        direction: ``denoise`` (clean into corrupt) or ``noise``; metric: ``logit-diff``, ``prob`` or ``kl``.
        method: ``exact`` or ``attribution`` (the gradient estimate of every cell, one forward and one backward
            per pair).
        exact_sample: with ``method="attribution"``, the cells per part also patched exactly (a seeded random
            sample; all when fewer; 0: none) for the estimate's Spearman rank correlation with exact patching
            (``result.agreement``, ``exact_sample.csv``).
        model: the patched model (loaded, a source, a :class:`ModelSpec`, or None for the default model).
        source_model: the model whose runs give the patched activations (same tokenizer, depth and hidden size),
            e.g. the float32 original of a 4-bit ``model``; the two prompts may then be the same text.
        out: also write the run directory there.

    Example:
        >>> result = layerscope.patch("When Mary and John went to the store, John gave a drink to",
        ...     "When Mary and John went to the store, Mary gave a drink to", answer=" Mary", wrong=" John")
        >>> result.cells.nlargest(3, "normalized")[["layer", "position", "token", "normalized"]]
    """
    config = PatchConfig(
        model=ModelSpec.of(model),
        clean=clean,
        corrupt=corrupt,
        answer=answer,
        wrong=wrong,
        pairs=os.fspath(pairs) if isinstance(pairs, os.PathLike) else pairs,
        n=n,
        part=parse_parts(part),
        head_positions=head_positions,
        direction=direction,
        metric=metric,
        seed=seed,
        batch_size=batch_size,
        method=method,
        exact_sample=exact_sample,
        source_model=None if source_model is None else ModelSpec.of(source_model),
    )
    given = model if isinstance(model, Model) else None
    if isinstance(source_model, Model):
        given = [given, source_model]
    return execute(config, given, out=out, force=force)
