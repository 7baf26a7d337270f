"""A tiny Llama GGUF file written by ``gguf.GGUFWriter`` that transformers (and so layerscope) loads.

Two blocks of width 64, a 300-token SentencePiece-style vocabulary (the 256 byte tokens and a few words), random
weights quantized by ``gguf.quants.quantize`` in several types, F32 norms. ``GGUF_TO_HF`` maps its tensor names to
the Hugging Face names transformers gives them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

D_MODEL, D_FF, N_LAYERS, HEADS, KV_HEADS, VOCAB = 64, 128, 2, 4, 2, 300

_BLOCK_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}


def gguf_to_hf(name: str) -> str:
    """``blk.0.attn_v.weight`` -> ``model.layers.0.self_attn.v_proj.weight`` (and the three outer tensors)."""
    outer = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight"}
    if name in outer:
        return outer[name]
    if name == "output.weight":
        return "lm_head.weight"
    _, block, part, leaf = name.split(".")
    return f"model.layers.{block}.{_BLOCK_NAMES[part]}.{leaf}"


def write_tiny_gguf(path: Path, seed: int = 0, name: str = "tiny llama") -> Path:
    """Write the tiny model to ``path``: matrices in Q8_0, Q5_0, Q4_0 and F16, norms in F32; ``general.name``
    is ``name``."""
    import gguf
    from gguf.quants import quantize

    kinds = gguf.GGMLQuantizationType
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(128)
    writer.add_embedding_length(D_MODEL)
    writer.add_block_count(N_LAYERS)
    writer.add_feed_forward_length(D_FF)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(D_MODEL // HEADS)
    writer.add_tokenizer_model("llama")
    words = VOCAB - 259
    writer.add_token_list(
        ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)] + [f"▁w{i}" for i in range(words)]
    )
    writer.add_token_scores([0.0] * 259 + [-float(i) for i in range(words)])
    writer.add_token_types([2, 3, 3] + [6] * 256 + [1] * words)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    rng = np.random.default_rng(seed)
    types = [kinds.Q8_0, kinds.Q5_0, kinds.Q4_0, kinds.F16]

    def matrix(name: str, rows: int, cols: int) -> None:
        values = (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32)
        kind = types[len(writer.tensors[-1]) % len(types)]
        data = quantize(values, kind)
        writer.add_tensor(name, data, raw_shape=data.shape, raw_dtype=kind)

    matrix("token_embd.weight", VOCAB, D_MODEL)
    kv = KV_HEADS * D_MODEL // HEADS
    for i in range(N_LAYERS):
        matrix(f"blk.{i}.attn_q.weight", D_MODEL, D_MODEL)
        matrix(f"blk.{i}.attn_k.weight", kv, D_MODEL)
        matrix(f"blk.{i}.attn_v.weight", kv, D_MODEL)
        matrix(f"blk.{i}.attn_output.weight", D_MODEL, D_MODEL)
        matrix(f"blk.{i}.ffn_gate.weight", D_FF, D_MODEL)
        matrix(f"blk.{i}.ffn_up.weight", D_FF, D_MODEL)
        matrix(f"blk.{i}.ffn_down.weight", D_MODEL, D_FF)
        for norm in ("attn_norm", "ffn_norm"):
            writer.add_tensor(f"blk.{i}.{norm}.weight", (1 + 0.1 * rng.standard_normal(D_MODEL)).astype(np.float32))
    writer.add_tensor("output_norm.weight", (1 + 0.1 * rng.standard_normal(D_MODEL)).astype(np.float32))
    matrix("output.weight", VOCAB, D_MODEL)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
