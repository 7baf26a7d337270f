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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch

from .. import progress
from ..analysis.echo import BOS_SETTINGS, echo_rates, word_grid
from ..errors import LayerscopeError, choices_text
from ..models import Model, load_model
from ..rundir import default_run_dir, model_record, write_run_json
from ..tokensets import TokenItem, encode_sets
from .echo_probe import next_token_stats
from .tokens import gather_sets

DEFAULT_PROMPT = "When John and Mary went to the store, John gave the bag to"
_GRID_COLUMNS = ("top1", "echo", "single_token", "applicable", "p_top1", "p_echo", "rank_echo")
BOS_CHOICES: dict[str, tuple[str, ...]] = {"both": BOS_SETTINGS, "without": ("without",), "with": ("with",)}


@dataclass
class EchoConfig:
    """What ``layerscope echo`` runs.

    Attributes:
        models: model sources, probed in order (``None`` or ``"default"``: Gemma 3 270M).
        sets: built-in set names or files (default: seed 004's ``echo-words``).
        inline: extra sets given inline, ``{name: [words]}``.
        bos: ``"both"``, ``"without"`` or ``"with"``.
        top_k: how many of the most probable next tokens to record.
        prompts: free prompts completed greedily with and without BOS.
        max_new_tokens: tokens generated per prompt.
        leading_space: feed ``" John"`` rather than ``"John"``.
        batch_size: inputs per forward pass.
        trust_remote_code: allow the model repositories' own code.
    """

    models: list[str | None] = field(default_factory=lambda: [None])
    sets: list[str] = field(default_factory=lambda: ["echo-words"])
    inline: dict[str, list[str]] = field(default_factory=dict)
    bos: str = "both"
    top_k: int = 5
    prompts: list[str] = field(default_factory=lambda: [DEFAULT_PROMPT])
    max_new_tokens: int = 8
    leading_space: bool = True
    batch_size: int = 64
    trust_remote_code: bool = False


def check_config(config: EchoConfig) -> dict[str, list[str]]:
    """Validate everything that needs no model; returns the word sets."""
    if config.bos not in BOS_CHOICES:
        raise LayerscopeError(f"--bos {config.bos!r} is not valid; valid: {choices_text(BOS_CHOICES)}")
    if config.top_k < 1:
        raise LayerscopeError(f"--top-k {config.top_k} is not valid; give at least 1")
    if config.max_new_tokens < 0:
        raise LayerscopeError(f"--max-new-tokens {config.max_new_tokens} is not valid; give 0 or more")
    if config.batch_size < 1:
        raise LayerscopeError(f"batch size {config.batch_size} is not valid; give at least 1")
    if not config.models:
        raise LayerscopeError("no model given; use --model (repeatable) or leave it out for the default model")
    for prompt in config.prompts:
        if not prompt.strip():
            raise LayerscopeError(f"--prompt {prompt!r} is empty; give some text")
    return gather_sets(config)


@dataclass
class EchoResult:
    """The outcome of an echo run.

    Attributes:
        table: one row per model, word and BOS setting: ``model, source, set, word, text, token_ids, n_tokens,
            single_token, bos, applicable, input_ids, echo_id, echo_token, top1_id, top1, p_top1, p_echo,
            rank_echo, echo, top2, p_top2, ...`` (``applicable=False`` rows: a model without BOS token, ``with``).
        completions: one row per model, prompt and BOS setting: ``model, prompt, bos, applicable, prompt_ids,
            token_ids, first_token, completion``.
        failures: ``{model source: one-line reason}`` for models that could not be loaded or probed.
        models: ``run.json`` records of the models probed.
    """

    table: pd.DataFrame
    completions: pd.DataFrame
    config: EchoConfig
    models: list[dict]
    failures: dict[str, str]
    timings: dict[str, float]

    @property
    def rates(self) -> pd.DataFrame:
        """Echo rate per model and BOS setting (see :func:`layerscope.analysis.echo.echo_rates`)."""
        return echo_rates(self.table)

    def summary_lines(self) -> list[str]:
        """Per model: ``name: echo without BOS 17/18 (94%), with BOS 0/18 (0%)``."""
        lines = []
        for model, group in self.rates.groupby("model", sort=False):
            parts = []
            for row in group.itertuples():
                rate = f"{row.n_echo}/{row.n_words} ({100 * row.echo_rate:.0f}%)" if row.applicable else "n/a (no BOS token)"
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
        from ..render.echo import echo_markdown

        return echo_markdown(self.grids(), self._texts(), self.rates, self.completions, self.config.max_new_tokens)

    def figure(self):
        """Plotly bar chart of the echo rate per model, without and with BOS."""
        from ..render.echo import rates_figure

        return rates_figure(self.rates)

    def html(self) -> str:
        """A self-contained page: the tables with echo cells highlighted, the bar chart, the completions."""
        from ..render.echo import echo_html

        return echo_html(
            self.grids(), self._texts(), self.rates, self.completions, self.config.max_new_tokens, self.figure()
        )

    @property
    def settings(self) -> tuple[str, ...]:
        return BOS_CHOICES[self.config.bos]

    def save(self, out: str | Path) -> Path:
        """Write ``echo.csv``, ``completions.csv``, ``rates.csv``, ``echo.md``, ``echo.html`` and ``run.json``."""
        from ..atomic import atomic_path, write_text
        from ..render.scatter import write_figure_spec

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        for name, frame in (("echo.csv", self.table), ("completions.csv", self.completions), ("rates.csv", self.rates)):
            with atomic_path(out / name) as tmp:
                frame.to_csv(tmp, index=False)
        write_text(out / "echo.md", self.markdown())
        write_text(out / "echo.html", self.html())
        write_figure_spec(self.figure(), out / "echo.plotly.json")
        timings = {**self.timings, "write": time.perf_counter() - start}
        # The records were taken while each model was loaded: the models are freed since.
        write_run_json(out, "echo", self.config, self.models, timings, failures=self.failures)
        return out


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


def _unique_label(name: str, used: set[str]) -> str:
    label, n = name, 2
    while label in used:
        label, n = f"{name} #{n}", n + 1
    used.add(label)
    return label


def _release_memory() -> None:
    """Return the memory of a model whose last reference was just dropped, before the next one loads."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _load(source: str | None, trust_remote_code: bool) -> Model:
    try:
        return load_model(source, trust_remote_code=trust_remote_code)
    except LayerscopeError:
        raise
    except Exception as exc:  # a broken model: one line, and the run goes on with the others
        first = (str(exc).strip().splitlines() or [""])[0]
        raise LayerscopeError(f"cannot load model {source or 'default'!r}: {type(exc).__name__}: {first}") from exc


def run_echo(config: EchoConfig, models: Sequence[str | Model | None] | None = None) -> EchoResult:
    """Run the echo probe on every model of ``config.models`` (or of ``models``, which may hold loaded ones).

    A model that cannot be loaded or probed is recorded in ``failures`` and the others still run.
    Models loaded here are freed before the next is loaded; loaded models passed in are left alone.
    """
    sets = check_config(config)
    sources = list(config.models if models is None else models)
    rows: list[dict] = []
    completions: list[dict] = []
    records: list[dict] = []
    failures: dict[str, str] = {}
    timings = {"load": 0.0, "probe": 0.0, "complete": 0.0}
    used: set[str] = set()
    for source in sources:
        key = source.source if isinstance(source, Model) else str(source or "default")
        start = time.perf_counter()
        try:
            model = source if isinstance(source, Model) else _load(source, config.trust_remote_code)
        except LayerscopeError as exc:
            failures[key] = str(exc)
            continue
        timings["load"] += time.perf_counter() - start
        try:
            label = _unique_label(model.name, used)
            start = time.perf_counter()
            items = encode_sets(model.tokenizer, sets, leading_space=config.leading_space, warn=False)
            rows += probe_rows(model, label, items, config)
            timings["probe"] += time.perf_counter() - start
            start = time.perf_counter()
            completions += completion_rows(model, label, config)
            timings["complete"] += time.perf_counter() - start
            records.append({"label": label, **model_record(model)})
        except LayerscopeError as exc:
            failures[key] = f"model {key!r}: {exc}"
        finally:
            if not isinstance(source, Model):
                model = None  # the last reference to a model this run loaded
                _release_memory()
    return EchoResult(
        table=pd.DataFrame(rows),
        completions=pd.DataFrame(completions),
        config=config,
        models=records,
        failures=failures,
        timings=timings,
    )


def echo(
    sets: str | list[str] | None = "echo-words",
    *,
    models: str | Model | Sequence[str | Model | None] | None = None,
    tokens: list[str] | str | None = None,
    bos: str = "both",
    top_k: int = 5,
    prompts: str | Sequence[str] = (DEFAULT_PROMPT,),
    max_new_tokens: int = 8,
    leading_space: bool = True,
    batch_size: int = 64,
    out: str | Path | None = None,
) -> EchoResult:
    """Feed single words to one or more models, with and without BOS: does the next token repeat the word?

    Models that fail are listed in ``result.failures`` (and warned about); if none ran, this raises.

    Example:
        >>> result = layerscope.echo(models=["default", "path/to/qwen3-dir"])
        >>> result.rates                      # echo rate per model, without / with BOS
        >>> print(result.markdown())          # the seed's table
        >>> result.figure()
        >>> result.save("runs/echo")
    """
    from ..tokensets import inline_set

    model_list = list(models) if isinstance(models, (list, tuple)) else [models]
    set_list = [] if sets is None else [sets] if isinstance(sets, str) else list(sets)
    inline: dict[str, list[str]] = {}
    if tokens is not None:
        inline = inline_set(tokens) if isinstance(tokens, str) else {"tokens": list(tokens)}
    config = EchoConfig(
        models=[m.source if isinstance(m, Model) else m for m in model_list],
        sets=set_list,
        inline=inline,
        bos=bos,
        top_k=top_k,
        prompts=[prompts] if isinstance(prompts, str) else list(prompts),
        max_new_tokens=max_new_tokens,
        leading_space=leading_space,
        batch_size=batch_size,
    )
    result = run_echo(config, model_list)
    for message in result.failures.values():
        warnings.warn(message, stacklevel=2)
    if not result.models:
        raise LayerscopeError("no model could be probed: " + "; ".join(result.failures.values()))
    if out is not None:
        result.save(out)
    return result


def default_out() -> Path:
    return default_run_dir("echo")
