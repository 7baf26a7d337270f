"""Activation patching: copy one activation from a source run into a base run and read the answer's metric.

Sites (``part``), for decoder block ``k`` at position ``p`` (the index in the input ids, BOS = 0):

* ``resid``: the residual stream at depth ``d`` (``0``: the embedding output as the model uses it, ``embed``;
  ``k + 1``: block ``k``'s output, the layer named ``k``), the same points as :mod:`~.layer_spec`;
* ``attn`` / ``mlp``: the output of block ``k``'s attention / MLP sub-module (found as ``ablate --part``
  finds it, :func:`~.ablation.submodule`). Whatever the block does with it before adding it to the residual
  stream (Gemma's and OLMo's post-norms) acts on each position alone, so replacing it at ``p`` replaces the
  block's residual addition at ``p``;
* ``heads``: head ``h``'s share of block ``k``'s attention, the slice ``h * head_dim : (h + 1) * head_dim``
  of the attention's output projection input (TransformerLens' ``hook_z``), at one position or at every one.

Cost. Two prompts of one pair share their tokens before the first changed position ``f``; every activation
there is the same in both runs. So:

1. the shared prefix ``[0, f)`` runs once, keeping its keys and values (the model's own KV cache; a model
   without one runs every position each time, ``f = 0``);
2. the two prompts' suffixes ``[f, T)`` run once, as a batch of two on that cache, recording every site
   asked for at those positions (``(T - f, d_model)`` per site: one run's activations, never a batch's);
3. a patch into block ``k`` (or the residual stream after it) runs only the blocks from there on, over
   positions ``[f, T)``, on a copy of the prefix cache: the blocks below are replaced by the base run's
   recorded residual stream. Positions ``[f, p)`` of a row recompute the base run's values (the patch at
   ``p`` cannot reach them); all positions of one block share one batch (``rows = cells``);
4. a patch at ``p < f`` copies an activation equal to its own and is never run: its value is the base's;
5. the output embedding sees the last position only, and only the answer's and the wrong token's rows of
   its weight unless the whole distribution is needed (``kl``, ``prob``); elementwise head transforms
   (Gemma 2's soft-cap) still apply, since the model's own forward applies them to what the head returns.

Across models. With ``source_model`` (same tokenizer, depth and width), the source run is that model's: the
clean prompt's activations of, e.g., a float32 reference patched into the corrupt prompt's run of its 4-bit
copy (``denoise``), or its corrupt prompt's into the copy's clean run (``noise``). The two prompts may then be
the same text: the difference is the model. Every activation differs between two models, so no prefix is
shared (``first = 0``). A cell's ``position`` may be None for every part: the site is replaced at every
position at once (for ``resid``, "restore block k's output"); :func:`~.restore.restore_blocks` runs one such cell per
block for two loaded models and one prompt.

Example:
    >>> engine = PatchEngine(model, pair_ids)                   # runs the prefix and both prompts
    >>> engine.cells("resid", direction="denoise", metric="logit-diff")[:2]
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import LayerscopeError
from ..models.block_check import check_blocks, stream_layout
from ..models.kinds import require_lm_head
from .ablation import _hidden, submodule

PARTS = ("resid", "attn", "mlp", "heads")
METRICS = ("logit-diff", "prob", "kl")
DIRECTIONS = ("denoise", "noise")
#: attribute names of an attention module's output projection (its input is the heads' outputs side by side)
OUTPUT_PROJECTION_NAMES = ("o_proj", "out_proj", "c_proj", "dense", "wo")


@dataclass(frozen=True)
class PairIds:
    """One clean/corrupt pair as token ids.

    Attributes:
        clean, corrupt: the two prompts' ids (with BOS when the model has one), of one length ``T``.
        answer, wrong: the ids of the answer and of the wrong token (one token each).
    """

    clean: tuple[int, ...]
    corrupt: tuple[int, ...]
    answer: int
    wrong: int

    @property
    def length(self) -> int:
        return len(self.clean)

    @property
    def changed(self) -> list[int]:
        """The positions where the two prompts differ."""
        return [p for p, (a, b) in enumerate(zip(self.clean, self.corrupt)) if a != b]


@dataclass(frozen=True)
class Cell:
    """One patch: ``part`` at block ``layer`` (``resid``: the depth, 0 = embed), ``position`` (None: every
    position at once) and ``head`` (heads only)."""

    part: str
    layer: int
    position: int | None
    head: int | None = None


@dataclass
class _Run:
    """One prompt's recorded activations at positions ``[f, T)``: ``{(part, layer): (T - f, width)}``, its
    scores at the last position (``(2,)``: answer, wrong logits; or ``(vocab,)``) and what each block returned
    beside its residual stream (``rests[k]``: None for a bare tensor, else the tuple's other entries, a tensor
    of the batch as this run's row ``(1, ...)``; e.g. Zaya's router state, which block ``k + 1`` reads)."""

    sites: dict[tuple[str, int], torch.Tensor]
    scores: torch.Tensor
    rests: dict[int, tuple | None] = field(default_factory=dict)


@contextlib.contextmanager
def recording_sites(model, parts, found: dict, *, embed=None, on_block_output=None) -> Iterator[None]:
    """While active, every forward of ``model`` puts each site of ``parts`` in ``found``: ``("resid", 0)`` block 0's
    input, ``("resid", k + 1)`` block ``k``'s output, ``("attn"|"mlp", k)`` its sub-module's output and
    ``("heads", k)`` the input ``(batch, pos, n_heads * head_dim)`` of its attention output projection.

    ``embed``: a function of block 0's input returning the tensor block 0 gets instead (attribution makes it a
    leaf that asks for its gradient); ``on_block_output(k, output)``: called with block ``k``'s raw output."""
    layers = model.layers
    handles = []

    def layer_input(module, args, kwargs):
        x = _hidden(args, kwargs)
        if embed is None:
            found["resid", 0] = x
            return None
        x = embed(x)
        found["resid", 0] = x
        return _with_hidden(args, kwargs, x)

    def output_of(key, block=None):
        def hook(module, args, output):
            if block is not None and on_block_output is not None:
                on_block_output(block, output)
            found[key] = output[0] if isinstance(output, (tuple, list)) else output

        return hook

    def z_of(k):
        def hook(module, args, kwargs):
            found["heads", k] = _hidden(args, kwargs)

        return hook

    try:
        handles.append(layers[0].register_forward_pre_hook(layer_input, with_kwargs=True))
        for k in range(model.n_layers):
            handles.append(layers[k].register_forward_hook(output_of(("resid", k + 1), k)))
            for part in ("attn", "mlp"):
                if part in parts:
                    handles.append(submodule(layers[k], part, k).register_forward_hook(output_of((part, k))))
            if "heads" in parts:
                projection = output_projection(model, k)
                handles.append(projection.register_forward_pre_hook(z_of(k), with_kwargs=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


class PatchEngine:
    """Patches activations of one pair, many cells per forward.

    Args:
        model: a :class:`~layerscope.Model` with an LM head.
        pair: the pair's ids.
        parts: the parts whose sites are recorded (and may be patched).
        full_vocab: score the whole vocabulary at the last position (needed by ``prob`` and ``kl``).
        batch_size: cells per forward.
        source_model: a second :class:`~layerscope.Model` (same tokenizer, depth and width; see
            :func:`check_source_model`) whose runs give the patched activations; None: ``model`` itself.

    Attributes:
        clean, corrupt: ``model``'s runs of the two prompts (the bases of ``noise`` and ``denoise``).
        source_clean, source_corrupt: the source model's runs (the same objects as ``clean`` and ``corrupt``
            without a source model).
    """

    def __init__(
        self,
        model,
        pair: PairIds,
        *,
        parts: Sequence[str] = PARTS,
        full_vocab: bool = False,
        batch_size: int = 64,
        source_model=None,
    ):
        for part in parts:
            if part not in PARTS:
                raise LayerscopeError(f"unknown part {part!r}; valid: {', '.join(PARTS)}")
        if len(pair.clean) != len(pair.corrupt):
            raise LayerscopeError("the clean and corrupt prompts have different token lengths")
        if not pair.changed and source_model is None:
            raise LayerscopeError("the clean and corrupt prompts are the same tokens")
        require_lm_head(model, "patching")
        check_blocks(model)  # blocks whose outputs are the model's hidden states, each run once
        if source_model is model:
            source_model = None
        if source_model is not None:
            check_source_model(model, source_model, heads="heads" in parts)
        self.model = model
        self.source_model = source_model
        self.pair = pair
        self.parts = tuple(parts)
        self.full_vocab = full_vocab
        self.batch_size = batch_size
        self.n_layers = model.n_layers
        self._heads = self._head_layout() if "heads" in self.parts else (0, 0)
        with torch.inference_mode():
            shared = pair.changed[0] if source_model is None and pair.changed else 0  # two models share none
            self.first = self._prefix(shared)
            try:
                self.clean, self.corrupt = self._record(model)
                trusted = self.first == 0 or self._prefix_cache_is_exact()
            except (AttributeError, IndexError, RuntimeError, TypeError, ValueError):  # a cache it cannot batch
                trusted = False
            if not trusted:  # positions counted from the ids (RoBERTa), recurrent states: every position each run
                self._cache, self.first = None, 0
                self.clean, self.corrupt = self._record(model)
            if source_model is None:
                self.source_clean, self.source_corrupt = self.clean, self.corrupt
            else:
                self.source_clean, self.source_corrupt = self._record(source_model)

    # ----- shape of the model -------------------------------------------------------------------
    @property
    def n_heads(self) -> int:
        return self._heads[0]

    def _head_layout(self) -> tuple[int, int]:
        return head_layout(self.model)

    def output_projection(self, k: int, model=None):
        """Block ``k``'s attention output projection (its input ``(batch, pos, n_heads * head_dim)``) in
        ``model`` (default: the patched model)."""
        return output_projection(model or self.model, k)

    # ----- the two runs -------------------------------------------------------------------------
    def ends(self, direction: str) -> tuple[_Run, _Run]:
        """The runs whose metric is 1 and 0 of ``normalized``: ``(clean, corrupt)``. Without a source model
        these are the two prompts' runs; with one, the source model's run on the source prompt and the
        patched model's on the other (``denoise``: source clean, model corrupt; ``noise``: model clean,
        source corrupt)."""
        base, source = self.roles(direction)
        return (source, base) if direction == "denoise" else (base, source)

    def roles(self, direction: str) -> tuple[_Run, _Run]:
        """``(base, source)``: the run patched and the run the activations come from."""
        if direction not in DIRECTIONS:
            raise LayerscopeError(f"unknown direction {direction!r}; valid: {', '.join(DIRECTIONS)}")
        return (self.corrupt, self.source_clean) if direction == "denoise" else (self.clean, self.source_corrupt)

    def sites_of(self, part: str) -> list[int]:
        """The layers of ``part``: depths ``0..n_layers`` for ``resid``, blocks ``0..n_layers-1`` otherwise."""
        return list(range(self.n_layers + 1)) if part == "resid" else list(range(self.n_layers))

    def _call(self, ids: torch.Tensor, positions: torch.Tensor, cache, *, use_cache: bool = False, model=None):
        model = model or self.model
        kwargs = {"input_ids": ids.to(model.device)}
        if cache is not None or use_cache:  # positions after the cached prefix; without one, the model's own
            kwargs["position_ids"] = positions.to(model.device)  # (RoBERTa's start at padding_idx + 1)
            kwargs[_cache_argument(model.module)] = cache
            kwargs["use_cache"] = True
        else:
            kwargs["use_cache"] = False
        return model.module(**kwargs)

    def _prefix(self, first: int) -> int:
        """Run the shared prefix ``[0, first)`` once and keep its cache; the first position each patch runs."""
        self._cache = None
        if first == 0:
            return 0
        ids = torch.tensor([self.pair.clean[:first]])
        try:
            out = self._call(ids, torch.arange(first)[None], None, use_cache=True)
        except (AssertionError, AttributeError, RuntimeError, TypeError, ValueError):  # a model that takes no cache
            return 0
        cache = out.get("cache") if out.get("cache") is not None else out.get("past_key_values")
        if cache is None or not hasattr(cache, "batch_repeat_interleave"):
            return 0
        self._cache = cache
        return first

    def _prefix_cache_is_exact(self) -> bool:
        """Whether the clean run on the prefix cache gives the scores of the clean prompt run whole (a model
        that counts positions from its input ids, or whose cache is not what its next forward continues from,
        gives others)."""
        ids = torch.tensor([self.pair.clean])
        with self._head():
            whole = self._scores(self._call(ids, torch.arange(self.pair.length)[None], None))[0]
        tolerance = 1e-4 if self.model.dtype == torch.float32 else 2e-2
        scale = max(1.0, float(whole.abs().max()))
        return bool(torch.allclose(self.clean.scores, whole, atol=tolerance * scale, rtol=tolerance))

    def _cache_for(self, rows: int):
        if self._cache is None:
            return None
        cache = copy.deepcopy(self._cache)
        if rows > 1:
            cache.batch_repeat_interleave(rows)
        return cache

    def _suffix(self, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        positions = torch.arange(self.first, self.pair.length)[None].expand(rows, -1)
        return positions, torch.tensor(self.pair.corrupt[self.first :])[None].expand(rows, -1)

    def _record(self, model) -> tuple[_Run, _Run]:
        """Run both prompts' suffixes through ``model`` as one batch of two; record every site of ``parts``."""
        ids = torch.tensor([self.pair.clean[self.first :], self.pair.corrupt[self.first :]])
        positions, _ = self._suffix(2)
        found: dict[tuple[str, int], torch.Tensor] = {}
        rests: dict[int, tuple | None] = {}
        own = model is self.model
        with contextlib.ExitStack() as stack:
            stack.enter_context(recording_sites(model, self.parts, found, on_block_output=_rest_into(rests)))
            stack.enter_context(self._head(model))
            out = self._call(ids, positions, self._cache_for(2) if own else None, model=model)
            scores = self._scores(out, model)
        expected = (2, self.pair.length - self.first, model.d_model)
        for (part, layer), value in found.items():
            if part == "resid" and tuple(getattr(value, "shape", ())) != expected:
                found_shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                where = f"block {layer - 1}" if layer else "the input of block 0"
                layout = stream_layout(found_shape, expected) if isinstance(value, torch.Tensor) else "not a tensor"
                raise LayerscopeError(
                    f"{where} of {type(model.module).__name__} is {found_shape}, not one "
                    f"residual stream (batch, pos, d_model) = {expected}: {layout}; such blocks cannot be patched"
                )
        runs = []
        device = self.model.device
        for row in range(2):
            sites = {key: value[row].detach().to(device).clone() for key, value in found.items()}
            run_rests = {k: _row_of(rest, row, 2) for k, rest in rests.items()} if own else {}
            runs.append(_Run(sites, scores[row].cpu(), run_rests))
        return runs[0], runs[1]

    # ----- scores --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _head(self, model=None) -> Iterator[None]:
        """The output embedding computes the last position only, and only the answer/wrong rows unless
        ``full_vocab``; whatever the model does after it (a soft-cap) acts elementwise on what it returns."""
        unembed = (model or self.model).parts.unembed
        if not isinstance(unembed, torch.nn.Linear):
            yield
            return
        weight = unembed.weight
        columns = None if self.full_vocab else torch.tensor([self.pair.answer, self.pair.wrong])
        w = weight if columns is None else weight[columns.to(weight.device)]
        b = unembed.bias if unembed.bias is None or columns is None else unembed.bias[columns.to(weight.device)]

        def forward(x):
            return F.linear(x[:, -1:], w, b)

        with _instance_forward(unembed, forward):
            yield

    def _scores(self, out, model=None) -> torch.Tensor:
        """``(rows, 2)`` answer and wrong logits, or ``(rows, vocab)``, at the last position, float32."""
        logits = out.logits[:, -1].float()
        narrow = not self.full_vocab and isinstance((model or self.model).parts.unembed, torch.nn.Linear)
        if self.full_vocab or narrow:
            return logits
        return logits[:, [self.pair.answer, self.pair.wrong]]

    # ----- patching ------------------------------------------------------------------------------
    def run_cells(self, cells: Sequence[Cell], direction: str = "denoise") -> torch.Tensor:
        """The scores ``(cells, 2)`` or ``(cells, vocab)`` with each cell patched alone (see :meth:`roles`:
        the source is the clean run for ``denoise``, the corrupt run for ``noise``, of the source model when
        there is one; the base is the other prompt's run of ``model``). Cells before the first changed
        position get the base run's scores without running."""
        base, source = self.roles(direction)
        out = torch.empty((len(cells), base.scores.shape[-1]))
        groups: dict[tuple[str, int], list[int]] = {}
        for i, cell in enumerate(cells):
            if cell.part not in self.parts:
                raise LayerscopeError(f"part {cell.part!r} was not recorded; valid: {', '.join(self.parts)}")
            if cell.position is not None and cell.position < self.first:
                out[i] = base.scores  # the same activation in both runs: nothing changes
            else:
                groups.setdefault((cell.part, cell.layer), []).append(i)
        with torch.inference_mode():
            for (part, layer), members in groups.items():
                for start in range(0, len(members), self.batch_size):
                    chunk = members[start : start + self.batch_size]
                    out[chunk] = self._run_group(part, layer, [cells[i] for i in chunk], base, source)
        return out

    def _run_group(self, part: str, layer: int, cells: list[Cell], base: _Run, source: _Run) -> torch.Tensor:
        rows = len(cells)
        f = self.first
        start = layer  # resid depth d is block d's input; a part of block k: block k's input is depth k
        hidden = base.sites["resid", start].expand(rows, -1, -1).clone()  # (rows, T - f, d_model)
        where = [slice(None) if c.position is None else slice(c.position - f, c.position - f + 1) for c in cells]
        with contextlib.ExitStack() as stack:
            if part == "resid":
                value = source.sites["resid", layer].to(hidden.dtype)  # (T - f, d_model)
                for row, at in enumerate(where):
                    hidden[row, at] = value[at]
            elif part in ("attn", "mlp"):
                sub = submodule(self.model.layers[layer], part, layer)
                stack.enter_context(_replaced_output(sub, where, source.sites[part, layer]))
            else:
                stack.enter_context(self._head_patch(layer, cells, source))
            stack.enter_context(self._from_block(start, hidden, base.rests))
            stack.enter_context(self._head())
            positions, ids = self._suffix(rows)
            return self._scores(self._call(ids, positions, self._cache_for(rows))).cpu()

    @contextlib.contextmanager
    def _head_patch(self, layer: int, cells: list[Cell], source: _Run) -> Iterator[None]:
        """Head ``h`` of each row: its slice of the output projection's input from ``source`` (one position, or
        every position from the first changed one)."""
        head_dim = self._heads[1]
        value = source.sites["heads", layer]  # (T - f, n_heads * head_dim)
        f = self.first

        def hook(module, args, kwargs):
            x = _hidden(args, kwargs).clone()
            for row, cell in enumerate(cells):
                width = slice(cell.head * head_dim, (cell.head + 1) * head_dim)
                where = slice(None) if cell.position is None else slice(cell.position - f, cell.position - f + 1)
                x[row, where, width] = value[where, width].to(x.dtype)
            return _with_hidden(args, kwargs, x)

        handle = self.output_projection(layer).register_forward_pre_hook(hook, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()

    @contextlib.contextmanager
    def _from_block(self, start: int, hidden: torch.Tensor, rests: dict[int, tuple | None]) -> Iterator[None]:
        """Blocks below ``start`` do nothing; block ``start`` receives ``hidden`` as its input, or, past the last
        block, the last block's output is ``hidden`` (so whatever the model applies before its head, a final norm
        or a head transform such as RoBERTa's, applies to it as in the model's own forward). A skipped block
        returns what the base run's returned beside its residual stream (``rests``, one row, repeated for each of
        ``hidden``'s rows), so a state one block hands the next (Zaya's router state) is the base run's."""
        layers = self.model.layers
        rows = hidden.shape[0]
        patches = []
        for k in range(min(start, self.n_layers)):
            patches.append((layers[k], _passing(_repeated(rests.get(k), rows))))

        def feed(module, args, kwargs):
            return _with_hidden(args, kwargs, hidden)

        def replace(module, args, out):
            return type(out)([hidden, *out[1:]]) if isinstance(out, (tuple, list)) else hidden

        if start < self.n_layers:
            handle = layers[start].register_forward_pre_hook(feed, with_kwargs=True)
        else:
            handle = layers[self.n_layers - 1].register_forward_hook(replace)
        try:
            with contextlib.ExitStack() as stack:
                for module, forward in patches:
                    stack.enter_context(_instance_forward(module, forward))
                yield
        finally:
            handle.remove()


# ----- models ----------------------------------------------------------------------------------------
def output_projection(model, k: int):
    """Block ``k``'s attention output projection in ``model`` (its input ``(batch, pos, n_heads * head_dim)``)."""
    attn = submodule(model.layers[k], "attn", k)
    for name in OUTPUT_PROJECTION_NAMES:
        found = getattr(attn, name, None)
        if isinstance(found, torch.nn.Module):
            return found
    raise LayerscopeError(
        f"the attention of block {k} ({type(attn).__name__}) has no output projection "
        f"(looked for {', '.join(OUTPUT_PROJECTION_NAMES)}); use part resid, attn or mlp"
    )


def head_layout(model) -> tuple[int, int]:
    """``(n_heads, head_dim)`` of ``model`` from its config and the output projection's input width."""
    config = model.config
    n_heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", None)
    projection = output_projection(model, 0)
    width = projection.weight.shape[1] if hasattr(projection, "weight") else None
    if not n_heads or not width or width % n_heads:
        raise LayerscopeError(
            f"cannot split the attention output of {type(model.module).__name__} into heads "
            f"({n_heads} heads, projection input width {width}); use part resid, attn or mlp"
        )
    return int(n_heads), int(width) // int(n_heads)


def _vocabulary(tokenizer) -> dict | int:
    """The tokenizer's ``{token: id}`` map (its length where it has none)."""
    get = getattr(tokenizer, "get_vocab", None)
    try:
        return get() if callable(get) else len(tokenizer)
    except (TypeError, NotImplementedError):
        return len(tokenizer)


def check_source_model(model, source, *, heads: bool = False) -> None:
    """Refuse, in one line naming both models and the value that differs, a source model whose activations
    cannot replace ``model``'s: another depth (``n_layers``), width (``d_model``), tokenizer (another
    vocabulary) or, with ``heads``, another head layout (the output projection's input width)."""
    names = f"source model {source.name!r} and model {model.name!r}"
    for what, a, b in (("depth", source.n_layers, model.n_layers), ("hidden size", source.d_model, model.d_model)):
        if a != b:
            raise LayerscopeError(f"{names} differ in {what} ({a} and {b}); the source model must have the same")
    if source.tokenizer is not model.tokenizer and _vocabulary(source.tokenizer) != _vocabulary(model.tokenizer):
        raise LayerscopeError(f"{names} have different tokenizers; the source model must share the tokenizer")
    if heads:
        widths = [output_projection(m, 0).weight.shape[1] for m in (source, model)]
        if widths[0] != widths[1]:
            raise LayerscopeError(
                f"{names} differ in attention output width ({widths[0]} and {widths[1]}); use part resid, attn or mlp"
            )


# ----- metrics ---------------------------------------------------------------------------------------
def metric_values(
    scores: torch.Tensor, clean_scores: torch.Tensor, metric: str, full_vocab: bool, answer: int, wrong: int
) -> np.ndarray:
    """The metric of each row of ``scores`` (``(rows, 2)`` answer/wrong logits, or ``(rows, vocab)`` with
    ``full_vocab``): ``logit-diff`` (logit(answer) - logit(wrong)), ``prob`` (the answer's probability) or
    ``kl`` (KL from ``clean_scores``' distribution, ``(1, vocab)``, to each row's). Returns ``(rows,)`` float64."""
    if metric not in METRICS:
        raise LayerscopeError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    scores = scores.float()
    if metric == "logit-diff":
        picked = scores[:, [answer, wrong]] if full_vocab else scores
        return (picked[:, 0] - picked[:, 1]).double().numpy()
    logp = torch.log_softmax(scores.double(), dim=-1)
    if metric == "prob":
        return logp[:, answer].exp().numpy()
    clean = torch.log_softmax(clean_scores.double(), dim=-1)
    return (clean.exp() * (clean - logp)).sum(-1).clamp(min=0).numpy()


# ----- small helpers ---------------------------------------------------------------------------------
def _cache_argument(module) -> str:
    """``cache`` (transformers 5) or ``past_key_values``: the name the model's forward takes its cache by."""
    names = inspect.signature(module.forward).parameters
    return "past_key_values" if "past_key_values" in names and "cache" not in names else "cache"


def _with_hidden(args: tuple, kwargs: dict, x: torch.Tensor):
    if args:
        return (x, *args[1:]), kwargs
    key = "hidden_states" if "hidden_states" in kwargs else next(k for k, v in kwargs.items() if torch.is_tensor(v))
    return args, {**kwargs, key: x}


def _rest_into(rests: dict[int, tuple | None]):
    """An ``on_block_output`` for :func:`recording_sites` that puts in ``rests[k]`` what block ``k`` returned
    beside its residual stream: None for a bare tensor, else the tuple's other entries."""

    def keep(k: int, output) -> None:
        rests[k] = tuple(output[1:]) if isinstance(output, (tuple, list)) else None

    return keep


def _row_of(rest: tuple | None, row: int, batch: int) -> tuple | None:
    """``rest`` (a block's other outputs for a batch of ``batch``) for one row: each tensor whose first dimension
    is the batch cut to ``(1, ...)`` at ``row``; anything else as it is."""
    if rest is None:
        return None
    return tuple(
        value[row : row + 1].detach().clone()
        if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == batch
        else value
        for value in rest
    )


def _repeated(rest: tuple | None, rows: int) -> tuple | None:
    """``rest`` (from :func:`_row_of`) with each one-row tensor repeated for ``rows`` rows."""
    if rest is None:
        return None
    return tuple(
        value.expand(rows, *value.shape[1:])
        if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == 1
        else value
        for value in rest
    )


def _passing(rest: tuple | None):
    """A block ``forward`` that returns its input in the block's output structure: a bare tensor (``rest`` None)
    or a tuple whose other entries are ``rest``."""

    def forward(*args, **kwargs):
        hidden = _hidden(args, kwargs)
        return hidden if rest is None else (hidden, *rest)

    return forward


@contextlib.contextmanager
def _instance_forward(module, forward) -> Iterator[None]:
    """``module.forward`` is ``forward`` within the block; whatever the instance held before is put back."""
    before = module.__dict__.get("forward", _NONE)
    module.__dict__["forward"] = forward
    try:
        yield
    finally:
        if before is _NONE:
            module.__dict__.pop("forward", None)
        else:
            module.__dict__["forward"] = before


_NONE = object()


@contextlib.contextmanager
def _replaced_output(module, where: list[slice], value: torch.Tensor) -> Iterator[None]:
    """``module``'s output (or its first entry, ``(rows, pos, width)``) at row ``i`` and positions ``where[i]``
    is ``value[where[i]]`` (``value``: ``(pos, width)``) within the block."""

    def hook(module, args, output):
        first = output[0] if isinstance(output, (tuple, list)) else output
        first = first.clone()
        fill = value.to(device=first.device, dtype=first.dtype)
        for row, at in enumerate(where):
            first[row, at] = fill[at]
        return (first, *output[1:]) if isinstance(output, (tuple, list)) else first

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
