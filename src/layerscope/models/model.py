"""``Model``: a loaded causal LM (or encoder) with its tokenizer and the parts layerscope works on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import LayerscopeError
from .architecture import Parts, find_parts
from .head import Head, HeadTransform, find_head
from .kinds import CAUSAL_LM, KINDS, describe, require_lm_head


@dataclass
class Model:
    """A loaded model: the torch module, its tokenizer and where it came from.

    Attributes:
        module: the Hugging Face ``*ForCausalLM`` module (for an encoder: the bare ``AutoModel``), in eval mode.
        tokenizer: its tokenizer.
        source: what the user asked for (hub id, path, or ``"default"``).
        fingerprint: a content hash identifying the weights (sha256 of a GGUF file, or of a directory's files).
        name: a short display name, e.g. ``"gemma-3-270m-q4_k_m"``.
        kind: ``"causal-lm"`` or ``"encoder"`` (BERT-like, loaded without any LM head).
        head_is_trained: False when the LM head is absent or its weights were missing from the files
            (newly initialized at load); experiments that read the head refuse such a model.
        kind_detail: what else is known, e.g. ``"sentence-embedding model"``, or None.
    """

    module: nn.Module
    tokenizer: object
    source: str
    fingerprint: str
    name: str
    kind: str = CAUSAL_LM
    head_is_trained: bool = True
    kind_detail: str | None = None
    parts: Parts = field(init=False, repr=False)
    _head: Head | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise LayerscopeError(f"unknown model kind {self.kind!r}; valid: {', '.join(KINDS)}")
        self.module.eval()
        self.parts = find_parts(self.module, int(self.module.config.get_text_config().num_hidden_layers))

    # ----- shape facts -------------------------------------------------------------------------
    @property
    def config(self):
        """The text config (``config.get_text_config()`` for multimodal wrappers)."""
        return self.module.config.get_text_config()

    @property
    def description(self) -> str:
        """The model in words: ``"a LlamaForCausalLM"``, ``"a BertModel encoder (sentence-embedding model)"``."""
        return describe(self)

    @property
    def n_layers(self) -> int:
        """Number of decoder layers (the blocks of the decoder's layer list; a config may count them another way)."""
        return len(self.parts.layers)

    @property
    def d_model(self) -> int:
        """Width of the residual stream."""
        return int(self.config.hidden_size)

    @property
    def context_length(self) -> int | None:
        """The longest input the model's positions cover (``max_position_embeddings``), or None when unknown."""
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(self.config, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    @property
    def device(self) -> torch.device:
        """Where the inputs go: the embedding's device (for a model placed by accelerate, the device its
        embedding runs on, even when its weights are offloaded to the CPU or disk)."""
        hook = getattr(self.parts.embed, "_hf_hook", None)
        execution = getattr(hook, "execution_device", None)
        if execution is not None:
            return torch.device(execution)
        device = self.parts.embed.weight.device
        return torch.device("cpu") if device.type == "meta" else device

    @property
    def device_map(self) -> dict | None:
        """accelerate's placement ``{module name: device}`` (``"disk"``, ``"cpu"``, ``0``), or None for a model on
        one device."""
        return getattr(self.module, "hf_device_map", None)

    @contextlib.contextmanager
    def materialized(self, module: nn.Module) -> Iterator[nn.Module]:
        """Within the block, ``module``'s weights are real tensors even when accelerate offloaded them to the
        CPU or disk (they are loaded onto its execution device and dropped again afterwards)."""
        if getattr(module, "_hf_hook", None) is None:
            yield module
            return
        from accelerate.utils import align_module_device

        with align_module_device(module):
            yield module

    @property
    def dtype(self) -> torch.dtype:
        return self.parts.embed.weight.dtype

    # ----- the parts ---------------------------------------------------------------------------
    @property
    def layers(self) -> nn.ModuleList:
        """The decoder layers, in order."""
        return self.parts.layers

    @property
    def head(self) -> Head:
        """How residuals become logits: final norm, logit scale, soft-cap (found on one short forward, once;
        ``LayerscopeError`` when the model's head is not of that form)."""
        if self._head is None:
            self._head = find_head(self)
        return self._head

    @property
    def final_norm(self) -> nn.Module | None:
        """The final norm the model applies to its last block's output, whose output is the layer ``norm``
        (None in post-LN models; a head transform, as in BERT's or ELECTRA's head, is not one, though the logit
        lens applies it: see :attr:`head`); where the head cannot be traced, the final norm found by name."""
        if self.kind != CAUSAL_LM or self.parts.unembed is None:
            return self.parts.final_norm
        try:
            head = self.head
        except LayerscopeError:
            return self.parts.final_norm
        norm = head.final_norm
        if isinstance(norm, nn.Sequential):  # a final norm, then a head transform: the norm alone
            norm = norm[0]
        return None if isinstance(norm, HeadTransform) or head.width != self.d_model else norm

    @property
    def embedding_matrix(self) -> torch.Tensor:
        """Input embedding rows, shape ``(vocab, d_model)``, as stored (before any scaling the model applies)."""
        return self.parts.embed.weight

    @property
    def unembedding_matrix(self) -> torch.Tensor:
        """Unembedding weight, shape ``(vocab, d_model)``."""
        if self.parts.unembed is None:
            raise LayerscopeError(f"model {self.name!r} is {self.description}, which has no output embedding (LM head)")
        return self.parts.unembed.weight

    # ----- tokens ------------------------------------------------------------------------------
    @property
    def bos_token_id(self) -> int | None:
        return getattr(self.tokenizer, "bos_token_id", None)

    def encode(self, text: str, *, bos: bool = True) -> list[int]:
        """Token ids of ``text``; with ``bos=True`` the BOS token is put first (when the tokenizer has one).

        The tokenizer's own special tokens are never added implicitly, so ``bos=False`` really feeds no BOS.
        """
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        if bos and self.bos_token_id is not None:
            ids.insert(0, int(self.bos_token_id))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        """Each id decoded on its own (``' January'`` keeps its leading space)."""
        return [self.tokenizer.decode([int(i)]) for i in ids]

    # ----- running -----------------------------------------------------------------------------
    @torch.inference_mode()
    def complete(self, prompt: str | Sequence[int], max_new_tokens: int = 8, *, bos: bool = True) -> list[int]:
        """Greedy continuation: the ``max_new_tokens`` argmax tokens after ``prompt`` (transformers' ``generate``,
        which keeps whatever cache the model has, or none).

        Returns the new token ids only. ``prompt`` may be text (encoded with :meth:`encode`) or ids.
        """
        require_lm_head(self, "complete")
        ids = self.encode(prompt, bos=bos) if isinstance(prompt, str) else list(prompt)
        if not ids:
            raise LayerscopeError("empty prompt: give at least one token (or keep BOS on)")
        input_ids = torch.tensor([ids], device=self.device)
        if hasattr(self.module, "generate"):  # transformers' own greedy decoding: every cache kind, or none
            generated = self.module.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=max_new_tokens,
                min_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                pad_token_id=getattr(self.tokenizer, "pad_token_id", None) or 0,
                eos_token_id=None,
            )
            return [int(i) for i in generated[0, len(ids) :]]
        out: list[int] = []
        for _ in range(max_new_tokens):  # a module without generate(): the whole sequence at each step
            next_id = int(self.module(input_ids=input_ids, use_cache=False).logits[0, -1].argmax())
            out.append(next_id)
            input_ids = torch.cat([input_ids, torch.tensor([[next_id]], device=self.device)], dim=1)
        return out

    def __repr__(self) -> str:
        kind = "" if self.kind == CAUSAL_LM else f", kind={self.kind!r}"
        return f"Model({self.name!r}{kind}, n_layers={self.n_layers}, d_model={self.d_model}, source={self.source!r})"
