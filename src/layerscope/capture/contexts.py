"""Where a word sits when it is run: alone after BOS, alone without BOS, or inside a template.

The positions read are the word's own tokens; in a template they are found from the tokenizer's
character offsets (the tokens overlapping the word's characters), so the template is tokenized as
one string, as the model would see it.

Example:
    >>> prompts = word_prompts(model, items, "The word is {word}")
    >>> model.decode([prompts[0].ids[p] for p in prompts[0].groups[0]])
    ' James'
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import LayerscopeError
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
    """
    check_context(context)
    prompts = []
    for item in items:
        if context in CONTEXTS:
            bos = [model.bos_token_id] if context == "bos" and model.bos_token_id is not None else []
            ids = tuple(bos) + tuple(item.token_ids)
            prompts.append(CapturePrompt(ids, (tuple(range(len(bos), len(ids))),)))
        else:
            prompts.append(_in_template(model, item.label, context))
    return prompts


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
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    positions = [i for i, (a, b) in enumerate(encoded["offset_mapping"]) if a < end and b > start]
    if not positions:
        raise LayerscopeError(f"word {word!r} gives no token of its own in template {template!r}")
    bos = [model.bos_token_id] if model.bos_token_id is not None else []
    return CapturePrompt(tuple(bos + ids), (tuple(p + len(bos) for p in positions),))
