"""Layer ablation: greedy predictions of a model with chosen decoder layers, or their attention or MLP, removed.

Removing layer ``k`` (decoder block ``k``, whose output is the layer named ``k`` elsewhere) means the
residual stream passes it unchanged (the layer returns its input), which is what deleting ``k`` from the
layer list does. The engine is exact and fast:

* the unablated model runs once per batch and keeps each layer's output ``(batch, pos, d_model)``;
* to remove a set of layers whose lowest is ``m``, layers ``< m`` return their cached output (they
  would compute the very same numbers), the removed layers return their input, and only the other
  layers ``> m`` compute. The model's own forward still runs around them, so masks, rotary
  embeddings and per-layer attention types (sliding/full) stay the model's;
* the output embedding sees only the scored positions (its input is cut to them), and only the argmax
  ids are kept;
* repeated prompts run once; prompts are sorted by length and padded on the right within a batch, with
  an attention mask: each prompt starts at position 0 and the model counts positions as it does for the
  prompt alone (RoBERTa-style offsets, learned or sinusoidal positions, recurrent states all stay right).

A removed block, and each block below the lowest removed one (which returns its cached output), returns
its output in the block's own structure (a bare tensor, or a tuple whose other entries are those of the
block's unablated output), as recorded on the unablated run.

Parts (``part``): ``"block"`` removes the whole block as above. ``"attn"`` / ``"mlp"`` remove only the
block's attention / MLP contribution, its addition to the residual stream: that sub-module (``self_attn``
/ ``mlp`` in Hugging Face models) returns zeros of its input's shape instead of computing. Whatever the
block does with that output before adding it is applied to zeros: RMSNorm post-norms (Gemma 2 and 3's
``post_attention_layernorm`` / ``post_feedforward_layernorm``, OLMo 3's) map zeros to zeros, so the
residual passes that step unchanged; the other half of the block still runs. The prefix reuse is the
same as for blocks (layers below the lowest ablated one return their cached output). The sub-module's
output structure (a tensor, or a tuple such as attention's ``(output, weights)`` or gpt-oss's
``(output, router_scores)``) is learnt from its real output on its first call and kept; the other
tuple entries are ``None`` (the blocks discard them).

Scoring: ``"first"`` compares the argmax after the prompt with the answer's first token (tokenized in
context: the tokens of ``prompt + answer`` after those of the prompt). ``"answer"`` (``"greedy"`` is the
same) checks the whole answer as greedy decoding would produce it, generating as many tokens as the answer
has: greedy decoding gives the answer exactly when, fed the answer's own tokens (one teacher-forced pass),
the argmax at every answer position is the answer's token, so one pass decides it. The prediction is the
greedy output up to and including the first wrong token (greedy decoding stops being the answer there).

Each item also gets the probability of the right answer: ``p_first``, the softmax probability of the
answer's first token after the prompt, and (``"answer"`` scoring) ``p_answer``, the product of the
teacher-forced probabilities of all the answer's tokens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from ..errors import LayerscopeError
from ..models.block_check import check_blocks
from ..models.kinds import require_lm_head

SCORINGS = ("first", "answer")
ALIASES = {"greedy": "answer"}  # the earlier name of "answer" scoring
PARTS = ("block", "attn", "mlp")
#: attribute names of a decoder block's attention and MLP sub-modules, tried in order
SUBMODULE_NAMES = {
    "attn": ("self_attn", "attn", "attention", "self_attention"),
    "mlp": ("mlp", "feed_forward", "ffn"),
}


@dataclass(frozen=True)
class EncodedTask:
    """Token ids of a task's prompts and answers.

    Attributes:
        prompt_ids: per item, the prompt's ids (with BOS when the model has one).
        answer_ids: per item, the answer's ids as they follow the prompt (never empty).
        split_answers: how many answers were tokenized on their own because ``prompt + answer`` did not
            start with the prompt's tokens (a token merged across the boundary).
    """

    prompt_ids: list[list[int]]
    answer_ids: list[list[int]]
    split_answers: int = 0


def encode_task(model, prompts: Sequence[str], answers: Sequence[str]) -> EncodedTask:
    """Tokenize prompts and answers; the answer's ids are those of ``prompt + answer`` after the prompt's.

    A prompt that, with its answer, runs past the model's context is refused (``LayerscopeError``): its
    positions would never have been trained, and its score would mean nothing.

    Example:
        >>> enc = encode_task(model, ["5+2="], ["7"])
        >>> enc.answer_ids
        [[236832]]
    """
    prompt_ids, answer_ids, split = [], [], 0
    limit = model.context_length
    for prompt, answer in zip(prompts, answers):
        head = model.encode(prompt)
        whole = model.encode(prompt + answer)
        if whole[: len(head)] == head and len(whole) > len(head):
            tail = whole[len(head) :]
        else:
            tail, split = model.encode(answer, bos=False), split + 1
        if not tail:
            raise LayerscopeError(f"answer {answer!r} of prompt {prompt!r} has no tokens")
        if limit is not None and len(head) + len(tail) > limit:
            shown = prompt if len(prompt) <= 60 else prompt[:60] + "..."
            raise LayerscopeError(
                f"prompt {shown!r} and its answer are {len(head) + len(tail)} tokens, past the model's context of "
                f"{limit} tokens (max_position_embeddings); shorten the prompt or use a model with a longer context"
            )
        prompt_ids.append(head)
        answer_ids.append(tail)
    return EncodedTask(prompt_ids, answer_ids, split)


@dataclass(frozen=True)
class Predictions:
    """What one configuration predicted.

    Attributes:
        removed: the layers whose ``part`` was removed (empty for the unablated model).
        tokens: per item, the predicted ids (``"first"``: one id; ``"answer"``: the greedy output up to
            and including the first wrong token, or the whole answer).
        correct: per item, whether the prediction matches the answer.
        p_first: per item, the probability of the answer's first token after the prompt.
        p_answer: per item, the product of the teacher-forced probabilities of the answer's tokens
            (``"answer"`` scoring; None with ``"first"``).
    """

    removed: tuple[int, ...]
    tokens: list[list[int]]
    correct: list[bool]
    p_first: list[float] | None = None
    p_answer: list[float] | None = None
    part: str = "block"  # "block", "attn" or "mlp": what was removed of each layer in ``removed``


@dataclass(frozen=True)
class _Batch:
    rows: list[list[int]]  # per row: the indices of the items with this very sequence
    input_ids: torch.Tensor  # (batch, pos)
    attention_mask: torch.Tensor  # (batch, pos)
    lengths: torch.Tensor  # (batch,): each row's length (rows are padded on the right)
    n_scored: list[int]  # per row: how many last positions are scored
    item_rows: torch.Tensor  # (items,): the row of each item of the batch, items in the order of ``rows``
    targets: torch.Tensor  # (items, max n_scored): each item's target ids, right-aligned (0 where unscored)


class LayerAblation:
    """Runs one task through a model with layers (or their attention or MLP) removed, reusing the unablated prefix.

    Items with the very same token sequence run once (a task with repeated prompts costs its distinct ones).
    Memory: the cache holds, for the layers some configuration needs, ``n_distinct * pos * d_model`` floats each.

    Example:
        >>> engine = LayerAblation(model, encode_task(model, prompts, answers), needed=[(), (4,), (4, 5)])
        >>> engine.run(()).correct[:3], engine.run((4,)).correct[:3]
        >>> engine.run((4, 5), part="attn").correct[:3]     # the attention of blocks 4 and 5 removed
    """

    def __init__(
        self,
        model,
        encoded: EncodedTask,
        *,
        scoring: str = "first",
        batch_size: int = 64,
        needed: Sequence[Sequence[int]] | None = None,
    ):
        scoring = ALIASES.get(scoring, scoring)
        if scoring not in SCORINGS:
            raise LayerscopeError(f"unknown scoring {scoring!r}; valid: {', '.join(SCORINGS)}")
        if batch_size < 1:
            raise LayerscopeError(f"batch size {batch_size} must be at least 1")
        require_lm_head(model, "ablation")
        check_blocks(model)
        self.model = model
        self.encoded = encoded
        self.scoring = scoring
        n_layers = model.n_layers
        configs = [tuple(sorted(set(c))) for c in (needed if needed is not None else [(k,) for k in range(n_layers)])]
        for removed in configs:
            check_layers(removed, n_layers)
        # Cache the output of layer m-1 for every configuration whose lowest removed layer is m > 0.
        self._cached_layers = sorted({c[0] - 1 for c in configs if c and c[0] > 0})
        self._batches = self._make_batches(batch_size)
        self._cache: list[dict[int, torch.Tensor]] | None = None
        self._baseline: Predictions | None = None
        self._structures: dict[tuple[int, str], int] = {}  # (layer, part) -> its sub-module's output shape

    # ----- batching ----------------------------------------------------------------------------
    def _sequence(self, i: int) -> tuple[list[int], list[int]]:
        prompt, answer = self.encoded.prompt_ids[i], self.encoded.answer_ids[i]
        if self.scoring == "first":
            return prompt, answer[:1]
        return prompt + answer[:-1], answer

    def _make_batches(self, batch_size: int) -> list[_Batch]:
        pad = getattr(self.model.tokenizer, "pad_token_id", None)
        pad = 0 if pad is None else int(pad)
        self._targets = []
        groups: dict[tuple, list[int]] = {}  # (sequence, n_scored) -> items
        for i in range(len(self.encoded.prompt_ids)):
            sequence, target = self._sequence(i)
            self._targets.append(target)
            groups.setdefault((tuple(sequence), len(target)), []).append(i)
        keys = sorted(groups, key=lambda key: len(key[0]))  # stable: similar lengths share a batch
        batches = []
        for start in range(0, len(keys), batch_size):
            chunk = keys[start : start + batch_size]
            width = max(len(sequence) for sequence, _ in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, (sequence, _) in enumerate(chunk):  # right padding: positions as for the prompt alone
                ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
                mask[row, : len(sequence)] = 1
            positions = mask.sum(-1)  # (batch,) each row's length
            rows = [groups[key] for key in chunk]
            keep = max(n for _, n in chunk)
            members = [(row, i) for row, items in enumerate(rows) for i in items]
            targets = torch.zeros((len(members), keep), dtype=torch.long)
            for k, (_, i) in enumerate(members):
                targets[k, keep - len(self._targets[i]) :] = torch.tensor(self._targets[i], dtype=torch.long)
            item_rows = torch.tensor([row for row, _ in members], dtype=torch.long)
            batches.append(_Batch(rows, ids, mask, positions, [n for _, n in chunk], item_rows, targets))
        return batches

    # ----- running -----------------------------------------------------------------------------
    @torch.inference_mode()
    def _forward(self, batch: _Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Argmax ids at the scored positions ``(batch, max n_scored)``, and each item's log-probabilities of
        its target ids there ``(items, max n_scored)``."""
        device = self.model.device
        keep = max(batch.n_scored)
        # each row's last ``keep`` positions, (batch, keep): the only ones the output embedding computes
        index = (batch.lengths[:, None] - keep + torch.arange(keep)[None, :]).clamp(min=0)
        gathered = []

        def last_positions(module, args):
            x = args[0]  # (batch, pos, d_model)
            gathered.append(True)
            picked = index.to(x.device)[..., None].expand(-1, -1, x.shape[-1])
            return (x.gather(1, picked), *args[1:])

        unembed = self.model.parts.unembed
        handle = unembed.register_forward_pre_hook(last_positions) if unembed is not None else None
        try:
            out = self.model.module(
                input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device), use_cache=False
            )
        finally:
            if handle is not None:
                handle.remove()
        logits = out.logits.float()
        if not gathered:  # a head that is not called as a module: pick the positions from the full logits
            logits = logits.gather(1, index.to(logits.device)[..., None].expand(-1, -1, logits.shape[-1]))
        logits = logits[:, -keep:]  # (batch, keep, vocab)
        rows = batch.item_rows.to(logits.device)[:, None]
        columns = torch.arange(keep, device=logits.device)[None, :]
        # log softmax at the targets only: logit - logsumexp (no second vocabulary-sized tensor)
        picked = logits[rows, columns, batch.targets.to(logits.device)] - logits.logsumexp(-1)[rows, columns]
        return logits.argmax(-1).cpu(), picked.cpu()  # (batch, keep), (items, keep)

    def _score(
        self, removed: tuple[int, ...], per_batch: list[tuple[torch.Tensor, torch.Tensor]], part: str = "block"
    ) -> Predictions:
        n = len(self.encoded.prompt_ids)
        tokens: list[list[int]] = [[] for _ in range(n)]
        correct = [False] * n
        p_first, p_answer = [0.0] * n, [0.0] * n
        for batch, (argmax, logp) in zip(self._batches, per_batch):
            member = 0
            for row, items in enumerate(batch.rows):
                scored = slice(argmax.shape[1] - batch.n_scored[row], None)
                predicted = argmax[row, scored].tolist()
                for i in items:
                    target = self._targets[i]
                    wrong = next((j for j, (p, t) in enumerate(zip(predicted, target)) if p != t), None)
                    correct[i] = wrong is None
                    tokens[i] = predicted if wrong is None else target[:wrong] + [predicted[wrong]]
                    logs = logp[member, scored].double()
                    p_first[i], p_answer[i] = float(logs[0].exp()), float(logs.sum().exp())
                    member += 1
        return Predictions(
            removed,
            tokens,
            correct,
            p_first=p_first,
            p_answer=p_answer if self.scoring == "answer" else None,
            part=part if removed else "block",
        )

    def baseline(self) -> Predictions:
        """Predictions of the unablated model; fills the cache of layer outputs on the first call."""
        if self._baseline is None:
            cache, per_batch, rests = [], [], []
            for batch in self._batches:
                rests.append({})
                with record_outputs(self.model.layers, self._cached_layers, rests[-1]) as outputs:
                    per_batch.append(self._forward(batch))
                cache.append(outputs)
            self._cache, self._rests = cache, rests
            self._baseline = self._score((), per_batch)
        return self._baseline

    def run(self, removed: Sequence[int], part: str = "block") -> Predictions:
        """Predictions with ``part`` (``"block"``, ``"attn"``, ``"mlp"``) of the layers in ``removed`` removed
        (``()``: the unablated model)."""
        removed = tuple(sorted(set(removed)))
        check_layers(removed, self.model.n_layers)
        check_part(part)
        if not removed:
            return self.baseline()
        if part != "block":
            for k in removed:
                submodule(self.model.layers[k], part, k)  # a block without that sub-module: one clear error
        start = removed[0]
        if start > 0 and start - 1 not in self._cached_layers:
            raise LayerscopeError(f"layers {list(removed)} were not announced in `needed` when the engine was built")
        self.baseline()  # the cache of layer outputs, and each layer's output structure
        per_batch = []
        for b, batch in enumerate(self._batches):
            prefix = self._cache[b][start - 1] if start > 0 else None
            with patched_layers(
                self.model.layers, removed, prefix, part=part, structures=self._structures, rests=self._rests[b]
            ):
                per_batch.append(self._forward(batch))
        return self._score(removed, per_batch, part)


def check_layers(removed: Sequence[int], n_layers: int) -> None:
    """Raise ``LayerscopeError`` unless every index in ``removed`` is a layer of the model."""
    bad = [k for k in removed if not 0 <= k < n_layers]
    if bad:
        raise LayerscopeError(f"layer {bad[0]} does not exist; valid: 0 to {n_layers - 1} ({n_layers} layers)")


def check_part(part: str) -> None:
    """Raise ``LayerscopeError`` unless ``part`` is one of :data:`PARTS`."""
    if part not in PARTS:
        raise LayerscopeError(f"unknown part {part!r}; valid: {', '.join(PARTS)}")


def submodule(layer, part: str, index: int | None = None):
    """The attention (``part="attn"``) or MLP (``"mlp"``) sub-module of a decoder block."""
    from torch import nn

    for name in SUBMODULE_NAMES[part]:
        found = getattr(layer, name, None)
        if isinstance(found, nn.Module):
            return found
    where = f"block {index}" if index is not None else "the block"
    raise LayerscopeError(
        f"{where} ({type(layer).__name__}) has no {'attention' if part == 'attn' else 'MLP'} sub-module "
        f"(looked for {', '.join(SUBMODULE_NAMES[part])}); use part 'block' for this model"
    )


def _hidden(args: tuple, kwargs: dict) -> torch.Tensor:
    if args:
        return args[0]
    if "hidden_states" in kwargs:
        return kwargs["hidden_states"]
    return next(v for v in kwargs.values() if isinstance(v, torch.Tensor))


def _zero_forward(module, key: tuple[int, str], structures: dict[tuple[int, str], int]):
    """A ``forward`` for ``module`` that returns zeros shaped as its input, in the structure of its real output
    (``structures[key]``: 0 for a tensor, ``n`` for an ``n``-tuple; learnt from one real call when missing)."""
    original = module.forward  # the instance's own (an accelerate hook wrapper) or the class's, bound

    def forward(*args, **kwargs):
        hidden = _hidden(args, kwargs)
        if key not in structures:
            out = original(*args, **kwargs)
            first = out[0] if isinstance(out, tuple) else out
            if not isinstance(first, torch.Tensor) or first.shape != hidden.shape:
                raise LayerscopeError(
                    f"the {key[1]} sub-module of block {key[0]} ({type(module).__name__}) does not return "
                    "a tensor shaped as its input; it cannot be removed on its own"
                )
            structures[key] = len(out) if isinstance(out, tuple) else 0
        zeros = torch.zeros_like(hidden)
        n = structures[key]
        return zeros if n == 0 else (zeros, *([None] * (n - 1)))

    return forward


def _rest(output):
    """What a block returns beside its residual stream: None for a bare tensor, else the tuple's other entries."""
    return tuple(output[1:]) if isinstance(output, (tuple, list)) else None


def _with_rest(hidden: torch.Tensor, rest):
    """``hidden`` in a block's own output structure (``rest`` from :func:`_rest`)."""
    return hidden if rest is None else (hidden, *rest)


@contextlib.contextmanager
def record_outputs(
    layers, indices: Sequence[int], rests: dict[int, object] | None = None
) -> Iterator[dict[int, torch.Tensor]]:
    """Record the outputs ``(batch, pos, d_model)`` of ``layers[i]`` for ``i`` in ``indices`` during the block;
    with ``rests``, also what every layer returns beside it (its output structure: see :func:`_rest`)."""
    outputs: dict[int, torch.Tensor] = {}
    handles = []

    def hook_for(i: int):
        def hook(module, args, output):
            if i in wanted:
                outputs[i] = output[0] if isinstance(output, (tuple, list)) else output
            if rests is not None:
                rests[i] = _rest(output)

        return hook

    wanted = set(indices)
    try:
        for i in range(len(layers)) if rests is not None else sorted(wanted):
            handles.append(layers[i].register_forward_hook(hook_for(i)))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def patched_layers(
    layers,
    removed: Sequence[int],
    prefix: torch.Tensor | None,
    *,
    part: str = "block",
    structures: dict[tuple[int, str], int] | None = None,
    rests: dict[int, object] | None = None,
) -> Iterator[None]:
    """Within the block, removed layers return their input and layers below the lowest removed one return
    ``prefix`` (the cached output of the layer just below it, shape ``(batch, pos, d_model)``), each in the
    layer's own output structure (``rests[i]``, recorded by :func:`record_outputs`: a bare tensor where
    missing), so the model's loop unpacks them as it unpacks the real outputs.

    With ``part="attn"`` or ``"mlp"``, the removed layers run, but that sub-module of each returns zeros
    (see the module's docstring); ``structures`` keeps what its output looks like between calls.

    The patch is an instance attribute ``forward``. A model loaded with a ``device_map`` already has one on
    its layers (accelerate's hook wrapper, beside ``_hf_hook``): whatever the instance held before is put
    back exactly, and a layer that held none is left without one.
    """
    check_part(part)
    start = min(removed)
    structures = {} if structures is None else structures
    rests = {} if rests is None else rests
    saved: dict[object, object] = {}  # module -> the instance's own ``forward`` before the patch (or _NONE)

    def identity_of(i: int):
        def identity(*args, **kwargs):
            return _with_rest(_hidden(args, kwargs), rests.get(i))

        return identity

    def cached_of(i: int):
        def cached(*args, **kwargs):
            return _with_rest(prefix, rests.get(i))

        return cached

    patches = [(layers[i], cached_of(i)) for i in range(start)]
    if part == "block":
        patches += [(layers[i], identity_of(i)) for i in removed]
    else:
        subs = [(i, submodule(layers[i], part, i)) for i in removed]
        patches += [(sub, _zero_forward(sub, (i, part), structures)) for i, sub in subs]
    try:
        for module, forward in patches:
            if module not in saved:
                saved[module] = module.__dict__.get("forward", _NONE)
            module.__dict__["forward"] = forward
        yield
    finally:
        for module, before in saved.items():
            if before is _NONE:
                module.__dict__.pop("forward", None)
            else:
                module.__dict__["forward"] = before


_NONE = object()  # marks a layer whose instance had no ``forward`` of its own
