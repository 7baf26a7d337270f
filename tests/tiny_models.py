"""Tiny random causal LMs of every architecture layerscope claims, built from transformers configs.

Nothing is downloaded: a byte-level BPE tokenizer is trained on a small corpus, and each model is
a few layers of width 64 with random weights, saved as a normal Hugging Face directory.
"""

from __future__ import annotations

from pathlib import Path

import torch

from layerscope.tokensets import BUILTIN_SETS

ARCHITECTURES = ("gemma2", "gemma3", "qwen3", "llama", "gpt_oss", "olmo3")

_COMMON = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=256,
)


def _corpus() -> list[str]:
    # Each word once: a set that repeats words of other sets leaves the tokenizer unchanged.
    words = list(dict.fromkeys(w for words in BUILTIN_SETS.values() for w in words))
    lines = [" ".join(words), " ".join(w.lower() for w in words)]
    lines += [f"{a}+{b}={a + b}" for a in range(10) for b in range(10)]
    lines += ["When John and Mary went to the store, John gave the bag to Mary.", "The word is red. The word is blue."]
    return lines * 3


def build_tokenizer():
    """A byte-level BPE tokenizer (about 400 tokens) with <bos>, <eos>, <pad>, <unk>."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        _corpus(), vocab_size=420, min_frequency=1, special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


def build_config(arch: str, vocab_size: int):
    import transformers as tf

    special = dict(vocab_size=vocab_size, pad_token_id=0, eos_token_id=1, bos_token_id=2, tie_word_embeddings=False)
    if arch == "gemma2":
        return tf.Gemma2Config(**_COMMON, **special, query_pre_attn_scalar=16, sliding_window=32)
    if arch == "gemma3":
        return tf.Gemma3TextConfig(
            **_COMMON, **{**special, "tie_word_embeddings": True}, query_pre_attn_scalar=16, sliding_window=32
        )
    if arch == "qwen3":
        return tf.Qwen3Config(**_COMMON, **special)
    if arch == "llama":
        return tf.LlamaConfig(**_COMMON, **special)
    if arch == "gpt_oss":
        return tf.GptOssConfig(
            **{**_COMMON, "num_key_value_heads": 2},
            **special,
            num_local_experts=4,
            num_experts_per_tok=2,
            sliding_window=32,
        )
    if arch == "olmo3":
        return tf.Olmo3Config(**_COMMON, **special, sliding_window=32)
    raise ValueError(f"unknown architecture {arch!r}")


def save_tiny_model(arch: str, directory: Path, seed: int = 0) -> Path:
    """Build a tiny random ``arch`` model with its tokenizer and save it as an HF directory."""
    from transformers import AutoModelForCausalLM

    tokenizer = build_tokenizer()
    config = build_config(arch, len(tokenizer))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    # Random init leaves norms at 1 / 0; spread all weights so every part matters in parity tests.
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
