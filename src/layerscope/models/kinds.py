"""What kind of model was loaded, and whether its LM head is real.

A checkpoint's ``config.json`` says which class it was saved from (``architectures``). A causal LM
(``*ForCausalLM``, ``*LMHeadModel``, ``*ForConditionalGeneration``) is loaded with its head; an encoder
(BERT-like: ``BertModel``, ``*ForMaskedLM``, a sentence-transformers directory) is loaded as the bare
encoder, with no LM head at all. A causal LM whose head weights are missing from its files (transformers
creates them newly initialized) is marked ``head_is_trained=False``.

Experiments that read the LM head (``echo``, ``ablate``, ``inspect``) call :func:`require_lm_head`
once the model is known; the others (``layers``, ``tokens``) read the residual stream and the
embeddings, which every kind has.

Example:
    >>> require_lm_head(load_model("sentence-transformers/all-MiniLM-L6-v2"), "echo")
    Traceback (most recent call last):
    LayerscopeError: echo reads a causal LM head, but 'sentence-transformers/all-MiniLM-L6-v2' is a BertModel ...
"""

from __future__ import annotations

from pathlib import Path

from ..errors import LayerscopeError

CAUSAL_LM = "causal-lm"
ENCODER = "encoder"
KINDS = (CAUSAL_LM, ENCODER)

#: Commands that read no LM head, per kind: what to suggest instead of one that does.
FITTING_COMMANDS = {ENCODER: ("encode", "stages", "layers", "tokens"), CAUSAL_LM: ("layers", "tokens")}

_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")
_SENTENCE_FILES = ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json")


def model_kind(config) -> str:
    """``"causal-lm"`` or ``"encoder"`` from a transformers config (its ``architectures`` and ``model_type``).

    A config that names a causal-LM class (by its name, or the class transformers' causal-LM auto class maps
    its ``model_type`` to, such as ``ReformerModelWithLMHead``) is a causal LM. One that names only other classes is an
    encoder when its family has no causal LM or is a masked-LM family (BERT, RoBERTa, ...); a
    decoder family saved without its head (``MistralModel``) stays a causal LM, whose head is then
    found missing at load.
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if getattr(config, "is_encoder_decoder", False):
        raise LayerscopeError(
            f"{type(config).__name__.removesuffix('Config')} is an encoder-decoder model; layerscope reads "
            "decoder-only causal LMs and encoders"
        )
    architectures = list(getattr(config, "architectures", None) or [])
    model_type = getattr(config, "model_type", None)
    if any(name.endswith(_CAUSAL_SUFFIXES) for name in architectures):
        return CAUSAL_LM
    if MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(model_type) in architectures:  # ReformerModelWithLMHead
        return CAUSAL_LM
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return ENCODER
    return CAUSAL_LM


def kind_detail(location) -> str | None:
    """``"sentence-embedding model"`` for a local sentence-transformers directory, else None."""
    path = Path(location) if not isinstance(location, Path) else location
    try:
        if any((path / name).is_file() for name in _SENTENCE_FILES):
            return "sentence-embedding model"
    except OSError:
        return None
    return None


def missing_head_weights(module, missing_keys) -> list[str]:
    """The LM head's parameter names among ``missing_keys`` (transformers' newly initialized weights)."""
    head = module.get_output_embeddings()
    if head is None:
        return []
    prefix = next((name for name, child in module.named_modules() if child is head), "")
    names = {f"{prefix}.{name}" if prefix else name for name, _ in head.named_parameters()}
    return sorted(names & set(missing_keys or ()))


def describe(model) -> str:
    """``"a BertModel encoder (sentence-embedding model)"``, ``"a LlamaForCausalLM"``: the model, in words."""
    text = type(model.module).__name__
    if getattr(model, "kind", CAUSAL_LM) == ENCODER:
        text += " encoder"
    detail = getattr(model, "kind_detail", None)
    return f"a {text} ({detail})" if detail else f"a {text}"


def require_lm_head(model, experiment: str) -> None:
    """Refuse, in one line, a model whose LM head is absent or was newly initialized at load.

    ``experiment`` names what needs the head (``"echo"``); the message says what the model is and
    which commands fit it.
    """
    kind = getattr(model, "kind", CAUSAL_LM)
    if kind == CAUSAL_LM and getattr(model, "head_is_trained", True):
        return
    if kind == ENCODER:
        problem = "has no causal LM head (one would be random)"
    else:
        problem = "has an LM head missing from its weights (newly initialized at load: random)"
    fitting = ", ".join(FITTING_COMMANDS[kind])
    raise LayerscopeError(
        f"{experiment} reads a causal LM head, but {model.source!r} is {describe(model)} that {problem}; "
        f"commands that fit it: {fitting}"
    )
