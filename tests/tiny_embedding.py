"""A tiny EmbeddingGemma-shaped sentence-transformers model: bidirectional Gemma 3, mean pooling, two Dense, Normalize."""

from __future__ import annotations

from pathlib import Path

import torch

PROMPTS = {"query": "task: search result | query: ", "document": "title: none | text: "}


def save_tiny_embeddinggemma(root: Path) -> Path:
    """Build it with random weights and save it under ``root / "st"`` (the HF part under ``root / "hf"``)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Dense, Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from tiny_models import build_tokenizer
    from transformers import Gemma3TextConfig, Gemma3TextModel

    tokenizer = build_tokenizer()
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=256,
        query_pre_attn_scalar=16,
        sliding_window=8,
        use_bidirectional_attention=True,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        architectures=["Gemma3TextModel"],
    )
    torch.manual_seed(0)
    model = Gemma3TextModel(config)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    model.save_pretrained(root / "hf")
    tokenizer.save_pretrained(root / "hf")
    modules = [
        Transformer(str(root / "hf")),
        Pooling(64, "mean"),
        Dense(64, 256, bias=False, activation_function=torch.nn.Identity()),
        Dense(256, 64, bias=False, activation_function=torch.nn.Identity()),
        Normalize(),
    ]
    st = SentenceTransformer(modules=modules, prompts=PROMPTS, device="cpu")
    st.save(str(root / "st"))
    return root / "st"
