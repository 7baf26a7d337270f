"""Where a word sits when it is run: alone after BOS, alone without BOS, or inside a template.

The positions read are the word's own tokens; in a template they are found from the tokenizer's
character offsets (the tokens overlapping the word's characters), so the template is tokenized as
one string, as the model would see it.

An encoder (``model.kind == "encoder"``, e.g. BERT) is run the way it was trained: ``bos`` and a
template put the text inside the tokenizer's own special tokens (``[CLS] word [SEP]``), which are
context, never part of the positions read; ``nobos`` feeds the word's tokens alone.

Example:
    >>> prompts = word_prompts(model, items, "The word is {word}")
    >>> model.decode([prompts[0].ids[p] for p in prompts[0].groups[0]])
    ' James'
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import LayerscopeError
from ..models.kinds import ENCODER
from ..tokensets import TokenItem
from .prompts import CapturePrompt

CONTEXTS = ("bos", "nobos")
WORD_FIELD = "{word}"


def context_problem(context) -> str | None:
    """What is wrong with ``context`` (for a message after the value), or None when it is valid."""
    if context in CONTEXTS:
        return None
    if not isinstance(context, str) or context.count(WORD_FIELD) != 1:
        return f"is not 'bos', 'nobos' nor a template with {WORD_FIELD} exactly once (e.g. 'The word is {WORD_FIELD}')"
    return None


def check_context(context: str) -> str:
    """``bos``, ``nobos``, or a template holding ``{word}`` exactly once; else a one-line error."""
    problem = context_problem(context)
    if problem:
        raise LayerscopeError(f"context {context!r} {problem}")
    return context


def word_prompts(model, items: Sequence[TokenItem], context: str = "bos") -> list[CapturePrompt]:
    """One prompt per word, whose single group is the word's tokens in ``context``.

    ``bos``/``nobos`` run the item's own tokens (``item.text``, leading space included if asked);
    a template replaces ``{word}`` with ``item.label`` and puts BOS first when the model has one.
    For an encoder, ``bos`` and a template use the tokenizer's special tokens instead of BOS.
    """
    check_context(context)
    encoder = _is_encoder(model)
    prompts = []
    for item in items:
        if encoder and context == "bos":
            prompts.append(_in_special_tokens(model, item))
        elif context in CONTEXTS:
            bos = [model.bos_token_id] if context == "bos" and model.bos_token_id is not None else []
            ids = tuple(bos) + tuple(item.token_ids)
            prompts.append(CapturePrompt(ids, (tuple(range(len(bos), len(ids))),)))
        else:
            prompts.append(_in_template(model, item.label, context))
    return prompts


def _is_encoder(model) -> bool:

    return getattr(model, "kind", None) == ENCODER


def _in_special_tokens(model, item: TokenItem) -> CapturePrompt:
    """``[CLS] word [SEP]`` (whatever the tokenizer adds), reading the word's own tokens only."""
    encoded = model.tokenizer(item.text, add_special_tokens=True, return_special_tokens_mask=True)
    ids = [int(i) for i in encoded["input_ids"]]
    positions = [i for i, special in enumerate(encoded["special_tokens_mask"]) if not special]
    if tuple(ids[p] for p in positions) != item.token_ids:
        raise LayerscopeError(
            f"word {item.label!r} tokenizes differently inside the model's special tokens; use the context 'nobos'"
        )
    return CapturePrompt(tuple(ids), (tuple(positions),))


def _in_template(model, word: str, template: str) -> CapturePrompt:
    prefix, suffix = template.split(WORD_FIELD)
    text = prefix + word + suffix
    start, end = len(prefix), len(prefix) + len(word)
    tokenizer = model.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise LayerscopeError(
            f"a template context needs a fast tokenizer (character offsets); {type(tokenizer).__name__} is not; "
            "use the context 'bos' or 'nobos'"
        )
    encoder = _is_encoder(model)  # special tokens (offsets (0, 0)) around the text; no BOS of ours
    encoded = tokenizer(
        text, add_special_tokens=encoder, return_offsets_mapping=True, return_special_tokens_mask=encoder
    )
    ids = list(encoded["input_ids"])
    special = encoded["special_tokens_mask"] if encoder else [0] * len(ids)
    positions = [
        i for i, ((a, b), s) in enumerate(zip(encoded["offset_mapping"], special)) if not s and a < end and b > start
    ]
    if not positions:
        raise LayerscopeError(f"word {word!r} gives no token of its own in template {template!r}")
    bos = [model.bos_token_id] if model.bos_token_id is not None and not encoder else []
    return CapturePrompt(tuple(bos + ids), (tuple(p + len(bos) for p in positions),))
