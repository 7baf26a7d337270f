"""Seed 004: one token in, what comes out. The echo probe across models, with and without BOS.

Flow: words -> each model's tokens (leading-space form by default) -> one forward pass per batch of
equal-length inputs (``[BOS] + word`` or ``word`` alone) -> next-token distribution at the last position
-> top-k, probability and rank of the word's own token -> table, markdown, HTML; plus greedy completions
of free prompts with and without BOS. Models are loaded one at a time and freed before the next.

A word that is several tokens in a model is kept and flagged (``single_token=False``): all its tokens
are fed, and the echo target is its *first* token, so "echo" then means the model starts the word again.
"""

from __future__ import annotations

import gc
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pandas as pd

from .. import progress
from ..analysis.echo import echo_rates, word_grid
from ..errors import LayerscopeError
from ..experiment import Result
from ..model_spec import ModelSpec, model_list, unique_name
from ..models import Model, require_lm_head
from ..models.loading import load_spec_timed, models_given
from ..render.echo import echo_html, echo_markdown, rates_bars
from ..rundir import model_record
from ..runner import execute
from ..tokensets import TokenItem, encode_sets
from ..tokensets.options import inline_words
from .echo_config import BOS_CHOICES, DEFAULT_PROMPT, DEFAULT_SETS, MAX_NEW_TOKENS, Bos, EchoConfig  # noqa: F401  (declared in a light module)
from .echo_probe import next_token_stats
from .findings import percent

_GRID_COLUMNS = ("top1", "echo", "single_token", "applicable", "p_top1", "p_echo", "rank_echo")


@dataclass(kw_only=True, repr=False)
class EchoResult(Result):
    """The outcome of an echo run.

    Attributes:
        table: one row per model, word and BOS setting: ``model, source, set, word, text, token_ids, n_tokens,
            single_token, bos, applicable, input_ids, echo_id, echo_token, top1_id, top1, p_top1, p_echo,
            rank_echo, echo, top2, p_top2, ...`` (``applicable=False`` rows: a model without BOS token, ``with``).
            ``rank_echo`` is 1 when the word's token is the most probable next token.
        completions: one row per model, prompt and BOS setting: ``model, prompt, bos, applicable, prompt_ids,
            token_ids, first_token, completion``.
        failures: ``{model: one-line reason}`` for models that could not be loaded or probed.
        models: ``run.json`` records of the models probed (``display_name`` is the ``model`` column).
    """

    config: EchoConfig
    table: pd.DataFrame
    completions: pd.DataFrame
    failures: dict[str, str] = field(default_factory=dict)

    main_file: ClassVar[str] = "echo.html"

    @property
    def rates(self) -> pd.DataFrame:
        """Echo rate per model and BOS setting (see :func:`layerscope.analysis.echo.echo_rates`)."""
        return echo_rates(self.table)

    @property
    def settings(self) -> tuple[str, ...]:
        return BOS_CHOICES[self.config.bos]

    def summary(self) -> list[str]:
        """Per model: ``name: echo without BOS 17/18 (94%), with BOS 0/18 (0%)``."""
        lines = []
        for model, group in self.rates.groupby("model", sort=False):
            parts = []
            for row in group.itertuples():
                rate = (
                    f"{row.n_echo}/{row.n_words} ({100 * row.echo_rate:.0f}%)"
                    if row.applicable
                    else "n/a (no BOS token)"
                )
                parts.append(f"{row.bos} BOS {rate}")
            lines.append(f"{model}: echo " + ", ".join(parts))
        return lines

    def grids(self) -> dict[str, dict[str, pd.DataFrame]]:
        """Per BOS setting, word-by-model grids of the columns the tables show (index ``(set, word)``)."""
        bos_here = [b for b in self.settings if b in set(self.table.get("bos", []))]
        return {bos: {column: word_grid(self.table, bos, column) for column in _GRID_COLUMNS} for bos in bos_here}

    def _texts(self) -> dict:
        return dict(zip(zip(self.table["set"], self.table["word"]), self.table["text"])) if len(self.table) else {}

    def markdown(self) -> str:
        """The seed-style tables (rows = words, columns = models, one per BOS setting) and the completions."""
        return echo_markdown(self.grids(), self._texts(), self.rates, self.completions, self.config.max_new_tokens)

    def rates_bars(self):
        """The echo rate per model, without and with BOS, as one
        :class:`~layerscope.render.bar_figure.GroupedBars` (the chart and ``echo.png``)."""
        return rates_bars(self.rates)

    def figure(self):
        """Plotly bar chart of the echo rate per model, without and with BOS."""
        return self.rates_bars().plotly()

    def html(self) -> str:
        """A self-contained page: the tables with echo cells highlighted, the bar chart, the completions."""
        return echo_html(
            self.grids(), self._texts(), self.rates, self.completions, self.config.max_new_tokens, self.figure()
        )

    def main_figure(self):
        return self.figure()

    # ----- the run directory -------------------------------------------------------------------------
    def tables(self) -> dict[str, pd.DataFrame]:
        return {"echo": self.table, "completions": self.completions, "rates": self.rates}

    def images(self) -> dict:
        return {"echo": lambda: self.rates_bars().png()} if len(self.rates) else {}

    def texts(self) -> dict[str, str]:
        # echo.html is the page (tables and the chart); the chart's spec beside it is for ``layerscope report``
        return {"echo.md": self.markdown(), "echo.html": self.html(), "echo.plotly.json": self.figure().to_json()}

    def record(self) -> dict:
        return {"failures": self.failures, "findings": self.findings()}

    def findings(self) -> dict[str, str]:
        """``{"echo": sentence}``: per model, how many words echo without and with BOS."""
        rates = self.rates
        several = rates["model"].nunique() > 1
        parts = []
        for model, group in rates.groupby("model", sort=False):
            said = []
            for row in group.itertuples():
                if not row.applicable:
                    said.append(f"{row.bos} BOS: no BOS token")
                    continue
                words = " words echo" if not said else ""
                rate = f" ({percent(row.n_echo / row.n_words)})" if row.n_words and not said else ""
                said.append(f"{row.bos} BOS {row.n_echo} of {row.n_words}{words}{rate}")
            parts.append((f"{model}: " if several else "") + "; ".join(said))
        return {"echo": "; ".join(parts)} if parts else {}

    @classmethod
    def from_files(cls, config, tables, arrays, record, run_dir) -> EchoResult:
        """A saved echo run (see :func:`layerscope.load_run`); ``rates`` is computed again from the table."""
        return cls(
            config=config,
            table=tables["echo"],
            completions=tables["completions"],
            failures=dict(record.get("failures") or {}),
            **cls.saved(record),
        )


def probe_rows(model: Model, label: str, items: list[TokenItem], config: EchoConfig) -> list[dict]:
    """The echo table's rows for one model: every word under every BOS setting of the config."""
    settings = BOS_CHOICES[config.bos]
    bos_id = model.bos_token_id
    fed = [(bos, i) for bos in settings for i in range(len(items)) if bos == "without" or bos_id is not None]
    sequences = [([int(bos_id)] if bos == "with" else []) + list(items[i].token_ids) for bos, i in fed]
    stats = next_token_stats(
        model,
        sequences,
        [items[i].token_ids[0] for _, i in fed],
        top_k=config.top_k,
        batch_size=config.batch_size,
        track=progress.track,
    )
    by_key = {key: (seq, stat) for key, seq, stat in zip(fed, sequences, stats)}
    rows = []
    for bos in settings:
        for index, item in enumerate(items):
            row = {
                "model": label,
                "source": model.source,
                "set": item.set,
                "word": item.label,
                "text": item.text,
                "token_ids": " ".join(map(str, item.token_ids)),
                "n_tokens": len(item.token_ids),
                "single_token": not item.is_split,
                "bos": bos,
                "applicable": (bos, index) in by_key,
            }
            if row["applicable"]:
                row.update(_stat_columns(model, *by_key[(bos, index)]))
            rows.append(row)
    return rows


def _stat_columns(model: Model, sequence: list[int], stat) -> dict:
    names = model.token_strings(stat.top_ids)
    columns = {
        "input_ids": " ".join(map(str, sequence)),
        "echo_id": stat.target_id,
        "echo_token": model.token_strings([stat.target_id])[0],
        "top1_id": stat.top_ids[0],
        "top1": names[0],
        "p_top1": stat.top_probs[0],
        "p_echo": stat.p_target,
        "rank_echo": stat.rank_target,
        "echo": stat.top_ids[0] == stat.target_id,
    }
    for k in range(1, len(names)):
        columns[f"top{k + 1}"] = names[k]
        columns[f"p_top{k + 1}"] = stat.top_probs[k]
    return columns


def check_context(model: Model, config: EchoConfig) -> None:
    """Refuse ``max_new_tokens`` that, after the longest prompt, run past the model's context."""
    limit = model.context_length
    if limit is None or config.max_new_tokens == 0:
        return
    longest = max(len(model.encode(prompt, bos=True)) for prompt in config.prompts)
    if longest + config.max_new_tokens > limit:
        raise LayerscopeError(
            f"--max-new-tokens {config.max_new_tokens} after a prompt of {longest} tokens runs past the model's "
            f"context of {limit} tokens (max_position_embeddings); give at most {max(limit - longest, 0)}"
        )


def completion_rows(model: Model, label: str, config: EchoConfig) -> list[dict]:
    """Greedy completions of every prompt under every BOS setting (``max_new_tokens`` each)."""
    rows = []
    if config.max_new_tokens == 0:
        return rows
    for prompt in config.prompts:
        for bos in BOS_CHOICES[config.bos]:
            row = {"model": label, "prompt": prompt, "bos": bos}
            row["applicable"] = bos == "without" or model.bos_token_id is not None
            if row["applicable"]:
                prompt_ids = model.encode(prompt, bos=bos == "with")
                new_ids = model.complete(prompt_ids, config.max_new_tokens)
                row["prompt_ids"] = " ".join(map(str, prompt_ids))
                row["token_ids"] = " ".join(map(str, new_ids))
                row["first_token"] = model.token_strings(new_ids[:1])[0]
                row["completion"] = model.decode(new_ids)
            rows.append(row)
    return rows


def _release_memory() -> None:
    """Return the memory of a model whose last reference was just dropped, before the next one loads."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _load(spec: ModelSpec, timings: dict[str, float]) -> Model:
    try:
        return load_spec_timed(spec, timings)
    except LayerscopeError:
        raise
    except Exception as exc:  # a broken model: one line, and the run goes on with the others
        first = (str(exc).strip().splitlines() or [""])[0]
        raise LayerscopeError(f"cannot load model {spec.label!r}: {type(exc).__name__}: {first}") from exc


def run_echo(config: EchoConfig, model: Model | Sequence[Model | None] | None = None) -> EchoResult:
    """Run the echo probe on every model of ``config.models``; no files written.

    ``model``: loaded models, one per spec of ``config.models`` (None entries are loaded from their
    spec), one loaded model (the first spec's), or None to load them all. A model that cannot be loaded or probed is recorded in ``failures``
    and the others still run; if none ran, this raises. Models loaded here are freed before the next is
    loaded; loaded models passed in are left alone.
    """
    sets = config.word_sets()
    given = models_given(config.models, model)
    rows: list[dict] = []
    completions: list[dict] = []
    records: list[dict] = []
    failures: dict[str, str] = {}
    timings = {"load": 0.0, "probe": 0.0, "complete": 0.0}
    used: set[str] = set()
    for spec, loaded in zip(config.models, given):
        key = unique_name(loaded.source if loaded is not None else spec.label, failures)
        try:
            current = loaded if loaded is not None else _load(spec, timings)
        except LayerscopeError as exc:
            failures[key] = str(exc)
            continue
        try:
            require_lm_head(current, "echo")
            check_context(current, config)
            label = unique_name(current.name, used)
            used.add(label)
            start = time.perf_counter()
            items = encode_sets(current.tokenizer, sets, leading_space=config.leading_space, warn=False)
            rows += probe_rows(current, label, items, config)
            timings["probe"] += time.perf_counter() - start
            start = time.perf_counter()
            completions += completion_rows(current, label, config)
            timings["complete"] += time.perf_counter() - start
            records.append(model_record(current, label))
        except LayerscopeError as exc:
            failures[key] = f"model {key!r}: {exc}"
        finally:
            current = None  # the last reference to a model this run loaded
            if loaded is None:
                _release_memory()
    if not records:
        raise LayerscopeError("no model could be probed: " + "; ".join(failures.values()))
    return EchoResult(
        config=config,
        table=pd.DataFrame(rows),
        completions=pd.DataFrame(completions),
        failures=failures,
        models=records,
        timings=timings,
    )


def echo(
    sets: str | Sequence[str] | None = None,
    *,
    models: ModelSpec | Model | str | Sequence[ModelSpec | Model | str | None] | None = None,
    model: ModelSpec | Model | str | Sequence[ModelSpec | Model | str | None] | None = None,
    tokens: Sequence[str] | str | None = None,
    bos: Bos = "both",
    top_k: int = 5,
    prompts: str | Sequence[str] = (DEFAULT_PROMPT,),
    max_new_tokens: int = 8,
    leading_space: bool = True,
    batch_size: int = 64,
    out: str | Path | None = None,
) -> EchoResult:
    """Feed single words to one or more models, with and without BOS: does the next token repeat the word?

    Args:
        sets: built-in set names or word files (default: seed 004's ``echo-words`` unless ``tokens``).
        models: one model or several, each a loaded model, a source, a :class:`~layerscope.ModelSpec`
            (e.g. ``ModelSpec(source, trust_remote_code=True)``) or None for the default model; ``model=`` is the
            same parameter.
        tokens: extra words, a list or ``"a,b,c"``.
        out: also write the run directory there.

    Models that fail are listed in ``result.failures`` (and warned about); if none ran, this raises.

    Example:
        >>> result = layerscope.echo(models=["default", "path/to/qwen3-dir"])
        >>> result.rates                      # echo rate per model, without / with BOS
        >>> print(result.markdown())          # the seed's table
        >>> result.figure()
        >>> result.save("runs/echo")
    """
    given = model_list(models, model)
    config = EchoConfig(
        models=tuple(ModelSpec.of(m) for m in given),
        sets=() if sets is None else (sets,) if isinstance(sets, str) else tuple(sets),
        tokens=inline_words(tokens),
        bos=bos,
        top_k=top_k,
        prompts=(prompts,) if isinstance(prompts, str) else tuple(prompts),
        max_new_tokens=max_new_tokens,
        leading_space=leading_space,
        batch_size=batch_size,
    )
    loaded = [m if isinstance(m, Model) else None for m in given]
    result = execute(config, loaded if any(m is not None for m in loaded) else None, out=out)
    for message in result.failures.values():
        warnings.warn(message, stacklevel=2)
    return result
