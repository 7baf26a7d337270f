"""The architecture matrix: every causal LM type transformers ships, as a tiny random model, against HF.

For each ``model_type`` of transformers' ``MODEL_FOR_CAUSAL_LM_MAPPING_NAMES`` a tiny random model is built
from the type's default config (shrunk: 3 layers, width 64, a 420-token byte-level BPE vocabulary), saved
and loaded back through :func:`layerscope.load_model`, then checked against transformers' own forward:

- ``capture``: every layer (``embed``, blocks) at every position of two prompts batched with right and left
  padding equals HF's ``hidden_states`` of each prompt run alone (the last block also passes when HF
  lists it after the final norm);
- ``lens``: the logit lens of block ``k`` at the last position equals the logits of HF's model cut after
  block ``k`` (top-1 and every probability within 1e-4);
- ``ablate``: removing block ``k`` (``LayerAblation``, three prompts of different lengths, left padded)
  gives the argmax and the answer's probability of HF's model with block ``k`` deleted from its layer list
  (or, where HF cannot run without it, with block ``k`` returning its input);
- ``patch``: patching the residual stream (every depth, at the changed position and the last) of a clean/corrupt
  pair one token apart gives the last position's logits of HF's forward with a hook that writes the clean
  run's value there (``PatchEngine``, denoising);
- ``echo``: ``echo`` and ``compare`` run, and the echo probe's next-token probabilities equal HF's.

A cell is ``pass``, ``FAIL`` (a wrong number: the worst kind), ``refused`` (a ``LayerscopeError``: one line,
exit 2) or ``error`` (any other exception: exit 1, a crash). Types transformers itself cannot build and
reload and run from the shrunk config are listed apart. Each type runs in a worker process with a time limit,
so one hang costs its own row only.

Run (about 20 minutes on two cores)::

    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/architectures.py --out docs/architectures.md
    python benchmarks/architectures.py --types llama,gpt2,bart   # a slice, printed only
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

COLUMNS = ("capture", "lens", "ablate", "patch", "echo")
STATUSES = ("pass", "FAIL", "refused", "error")
PROMPTS = ("When John and Mary went to the store", "The word is red", "5+2=", "John gave the bag to")
WIDTH, LAYERS, HEADS, KV_HEADS, HEAD_DIM = 64, 3, 4, 2, 16

#: config keys set to tiny values wherever they appear (sub-configs included)
TINY = {
    **dict.fromkeys(
        (
            "hidden_size",
            "n_embd",
            "d_model",
            "embed_dim",
            "dim",
            "n_embed",
            "word_embed_proj_dim",
            "attention_hidden_size",
        ),
        WIDTH,
    ),
    **dict.fromkeys(("num_hidden_layers", "n_layer", "num_layers", "n_layers", "decoder_layers"), LAYERS),
    **dict.fromkeys(("encoder_layers", "num_encoder_layers", "num_decoder_layers"), LAYERS),
    **dict.fromkeys(("num_attention_heads", "n_head", "n_heads", "num_heads"), HEADS),
    **dict.fromkeys(("decoder_attention_heads", "encoder_attention_heads"), HEADS),
    **dict.fromkeys(("num_key_value_heads", "n_kv_heads", "num_kv_heads", "multi_query_group_num"), KV_HEADS),
    **dict.fromkeys(
        ("head_dim", "attention_head_dim", "kv_channels", "v_head_dim", "global_head_dim", "d_head", "d_kv"), HEAD_DIM
    ),
    **dict.fromkeys(("intermediate_size", "n_inner", "ffn_dim", "ffn_hidden_size", "d_ff", "d_inner"), 128),
    **dict.fromkeys(("decoder_ffn_dim", "encoder_ffn_dim"), 128),
    **dict.fromkeys(("hidden_size_per_layer_input",), 16),
    **dict.fromkeys(("moe_intermediate_size", "shared_expert_intermediate_size", "expert_ffn_hidden_size"), 32),
    **dict.fromkeys(("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts"), 4),
    **dict.fromkeys(("num_experts_per_tok", "moe_k", "top_k", "moe_topk", "num_experts_per_token"), 2),
    **dict.fromkeys(("n_shared_experts", "num_shared_experts"), 1),
    **dict.fromkeys(("kv_lora_rank", "q_lora_rank"), 16),
    **dict.fromkeys(("qk_rope_head_dim", "qk_nope_head_dim"), 8),
    **dict.fromkeys(("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len"), 256),
    **dict.fromkeys(("first_k_dense_replace",), 1),
    **dict.fromkeys(("image_size",), 32),
    **dict.fromkeys(("mamba_dt_rank", "time_step_rank", "adapter_rank", "index_topk", "zero_expert_num"), 8),
    **dict.fromkeys(("embedding_dim", "hidden_size_global"), WIDTH),
    **dict.fromkeys(("num_blocks",), LAYERS),
    **dict.fromkeys(("swa_head_dim", "index_head_dim", "indexer_head_dim"), HEAD_DIM),
    **dict.fromkeys(("swa_num_attention_heads", "index_n_heads", "index_num_heads"), HEADS),
    **dict.fromkeys(("swa_num_key_value_heads",), KV_HEADS),
    **dict.fromkeys(("mlp_only_intermediate_size",), 128),
    **dict.fromkeys(("shared_experts_intermediate_size",), 32),
    **dict.fromkeys(("patch_size",), 8),
}
SPECIAL_IDS = {"pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2, "decoder_start_token_id": 2}


# ----- building ----------------------------------------------------------------------------------------------
def build_tokenizer(directory: Path) -> None:
    """A byte-level BPE tokenizer of about 420 tokens with <pad>, <eos>, <bos>, <unk>, saved to ``directory``."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    corpus = [" ".join(PROMPTS), "When John and Mary went to the store, John gave the bag to Mary."]
    corpus += [f"{a}+{b}={a + b}" for a in range(10) for b in range(10)] + ["The word is red. The word is blue."]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus * 3, vocab_size=420, min_frequency=1, special_tokens=["<pad>", "<eos>", "<bos>"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<pad>"
    )
    tokenizer.save_pretrained(directory)


#: per-layer lists whose values name layers (kept layers renumbered, the others dropped)
LAYER_INDEX_LISTS = ("index_layers", "hybrid_layer_ids", "mlp_only_layers", "ple_layer_ids", "full_attn_idxs")
#: per-layer lists of string kinds: the kept layers cover every kind the default config mixes
LAYER_KIND_LISTS = ("layer_types", "layers_block_type", "mlp_layer_types", "attn_layers", "block_types")
#: values a default config leaves ``None`` that its model cannot be built without
NONE_FILLED = {
    "head_dim": HEAD_DIM,
    "num_key_value_heads": KV_HEADS,
    "n_routed_experts": 4,
    "n_shared_experts": 1,
    "num_experts_per_tok": 2,
    "indexer_n_heads": 2,
    "indexer_kv_heads": 1,
    "indexer_head_dim": HEAD_DIM,
    "indexer_budget": 8,
    "indexer_compress_ratio": 2,
}
#: values set wherever they appear (sub-configs included): features the tiny layer count cannot hold
FIXED = {"num_kv_shared_layers": 0, "n_group": 1, "num_expert_group": 1, "topk_group": 1}
#: what a type's default config needs beyond shrinking (its own invariants, found by building it)
OVERRIDES = {
    "blenderbot": {"encoder_layers": LAYERS},
    "codegen": {"rotary_dim": 8},
    "gptj": {"rotary_dim": 8},
    "bamba": {"attn_layer_indices": [1]},
    "cohere_compass_text": {"rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 10000.0}}},
    "dbrx": {"attn_config": {"kv_n_heads": 1, "rope_theta": 10000.0, "clip_qkv": 8.0}},
    "dory": {
        **{"num_hidden_layers": 2 * LAYERS, "n_input_layers": 2, "n_recurrent_layers": 2, "n_output_layers": 2},
        "layer_types": ["sliding_attention", "mlp", "full_attention", "mlp", "sliding_attention", "mlp"],
    },
    "gemma3n_text": {"intermediate_size": [128] * LAYERS, "laurel_rank": 8},
    "gemma4_assistant": {"hidden_size_per_layer_input": 0},
    "granitemoehybrid": {"layer_types": ["linear_attention", "attention", "linear_attention"]},
    "kolibri1_1": {
        "layer_types": ["sliding_attention", "indexed_attention", "sliding_attention"],
        **{"index_layers": [1], "kv_source_layers": [0, 1, 2], "mlp_only_layers": [0], "index_num_heads": 2},
    },
    "dots3_note_text": {"head_dim": 16},
    "dots3_note": {"head_dim": 16},
    "hrm_text": {
        "num_layers_per_stack": None,
        "num_hidden_layers": 1,
        "H_cycles": 1,
        "L_cycles": 1,
        "L_bp_cycles": [1],
    },
    "jamba": {"attn_layer_period": 2, "attn_layer_offset": 1, "expert_layer_period": 2, "expert_layer_offset": 1},
    "zamba": {
        **{"layers_block_type": ["linear_attention", "hybrid", "hybrid"], "n_mamba_heads": 2},
        **{"attention_hidden_size": 2 * WIDTH, "attention_head_dim": 2 * WIDTH // HEADS},
    },
    "zamba2": {"attention_hidden_size": 2 * WIDTH, "attention_head_dim": 2 * WIDTH // HEADS},
    "lfm2_moe": {"layer_types": ["conv", "full_attention", "conv"], "num_dense_layers": 1},
    "reformer": {
        "is_decoder": True,
        "axial_pos_shape": [16, 16],
        "axial_pos_embds_dim": [32, 32],
        "local_attn_chunk_length": 8,
        "lsh_attn_chunk_length": 8,
        "attention_head_size": HEAD_DIM,
    },
    "xmod": {"default_language": "en_XX"},
    # its cache rounds the qk width up to a multiple of 64 and its layers do not: at width 64, factor 0.5 differs
    "xlstm": {"qk_dim_factor": 1.0},
    "musicgen": {
        "num_codebooks": 1,
        "decoder_start_token_id": 2,
    },  # one codebook: a token sequence as text models take it
    "musicgen_melody": {"num_codebooks": 1, "decoder_start_token_id": 2},
}


#: why transformers itself cannot build, reload or run a type from a tiny config (said with its error in the listing)
WHY_NOT_BUILT = {
    "gemma3n": "its vision tower is a TimmWrapperModel, which needs the timm package (not installed); the text "
    "decoder alone is gemma3n_text",
    "gemma4_assistant": "a draft model for speculative decoding: every layer reads the target model's keys and "
    "values (shared_kv_states), so it does not run on token ids alone",
    "gemma4_unified_assistant": "a draft model for speculative decoding: every layer reads the target model's keys "
    "and values (shared_kv_states), so it does not run on token ids alone",
    "blt": "transformers' own decoding fails: its cache reads num_hidden_layers, which BltConfig (separate "
    "encoder, global and decoder stacks) does not have",
}


def _kept_layers(values: dict, n: int) -> list[int]:
    """The ``LAYERS`` layers (of ``n``) a tiny config keeps: the first ones and the last, with the first layer of
    each kind a per-layer kind list mixes swapped in where the plain choice misses it (a hybrid keeps its
    attention, a MoE its sparse block)."""
    from collections import Counter

    keep = [*range(LAYERS - 1), n - 1]
    for key in LAYER_KIND_LISTS:
        if not (isinstance(values.get(key), list) and len(values[key]) == n):
            continue
        kinds = [str(k) for k in values[key]]
        for kind in dict.fromkeys(kinds):
            counts = Counter(kinds[i] for i in keep)
            if counts[kind]:
                continue
            slot = next((j for j in range(LAYERS - 1) if counts[kinds[keep[j]]] > 1), None)
            if slot is None:
                break
            keep[slot] = kinds.index(kind)
            keep.sort()
    return keep


def _shrink(values: dict, vocab: int) -> dict:
    """``values`` (a config dict) with tiny sizes, nested configs shrunk too, per-layer lists cut to the kept
    layers (``_kept_layers``), per-layer overrides renumbered, derived sizes made consistent."""
    layers_before = next((values[k] for k in ("num_hidden_layers", "n_layer", "num_layers") if k in values), None)
    keep = _kept_layers(values, layers_before) if isinstance(layers_before, int) and layers_before > LAYERS else None
    out = {}
    for key, value in values.items():
        if isinstance(value, dict) and key.endswith("config") and key != "per_layer_config":
            out[key] = _shrink(value, vocab)
        elif key == "per_layer_config" and isinstance(value, dict):
            renumbered = {
                keep.index(int(i)) if keep else int(i): v for i, v in value.items() if not keep or int(i) in keep
            }
            out[key] = {i: _shrink(v, vocab) for i, v in renumbered.items() if i < LAYERS}
        elif key in TINY and isinstance(value, int) and not isinstance(value, bool) and value > 0:
            out[key] = min(value, TINY[key]) if key not in ("image_size",) else TINY[key]
        elif key in ("vocab_size", "unpadded_vocab_size", "vocab_size_per_layer_input") and isinstance(value, int):
            out[key] = vocab
        elif key in SPECIAL_IDS and isinstance(value, int):
            out[key] = SPECIAL_IDS[key]
        elif key in FIXED:
            out[key] = FIXED[key]
        elif key in NONE_FILLED and value is None:
            out[key] = NONE_FILLED[key]
        elif key in LAYER_INDEX_LISTS and isinstance(value, list) and keep:
            out[key] = [keep.index(i) for i in value if i in keep]
        elif key == "kv_source_layers" and isinstance(value, list) and keep:
            out[key] = [keep.index(value[i]) if value[i] in keep else j for j, i in enumerate(keep)]
        elif isinstance(value, list) and keep and len(value) == layers_before:
            out[key] = [value[i] for i in keep]
        else:
            out[key] = value
    return _consistent(out)


def _consistent(values: dict) -> dict:
    """Sizes a config derives from others, re-derived from the shrunk ones (attention with a compressed KV
    (MLA), Mamba heads, fused-head widths)."""
    out = dict(values)
    if "kv_lora_rank" in out and "num_attention_heads" in out:
        out["num_key_value_heads"] = out["num_attention_heads"]
        if "qk_head_dim" in out:
            out["qk_head_dim"] = out["qk_nope_head_dim"] + out["qk_rope_head_dim"]
        if "head_dim" in out and "qk_rope_head_dim" in out:
            out["head_dim"] = out["qk_rope_head_dim"]
    width = out.get("hidden_size")
    for heads, dim, expand in (
        ("mamba_n_heads", "mamba_d_head", "mamba_expand"),
        ("n_mamba_heads", "mamba_headdim", "mamba_expand"),
        ("num_heads", "head_dim", "expand"),
    ):
        if (
            heads in out
            and dim in out
            and expand in out
            and isinstance(width, int)
            and out.get("model_type") != "xlstm"
        ):
            out[dim] = HEAD_DIM
            out[heads] = out[expand] * width // HEAD_DIM
            if isinstance(out.get("mamba_d_ssm"), int):  # Falcon-H1 states the Mamba width itself
                out["mamba_d_ssm"] = out[expand] * width
    for key in ("mamba_n_groups", "n_groups", "mamba_ngroups"):
        if key in out and isinstance(out[key], int):
            out[key] = 1
    for key in ("mamba_d_state", "state_size", "ssm_state_size"):
        if isinstance(out.get(key), int):
            out[key] = min(out[key], 16)
    return out


def causal_class(model_type: str):
    """The class transformers' causal-LM auto class names for ``model_type`` (None where transformers lacks it)."""
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return getattr(transformers, MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(model_type, ""), None)


def tiny_config(model_type: str, vocab: int):
    """The type's default config with tiny sizes (3 layers, width 64, ``vocab`` tokens): the config of the class
    transformers' causal-LM auto class builds for the type (MusicGen's decoder config, not its composite one)."""
    import transformers
    from transformers import CONFIG_MAPPING

    cls = CONFIG_MAPPING[model_type]
    own = getattr(causal_class(model_type), "config_class", None)
    if isinstance(own, type) and own is not cls and issubclass(own, transformers.PretrainedConfig):
        cls = own
    values = _shrink(cls().to_dict(), vocab)
    for key, value in OVERRIDES.get(model_type, {}).items():
        for where in (values, *(v for k, v in values.items() if k.endswith("config") and isinstance(v, dict))):
            if key in where or where is values:
                where[key] = value
    values.pop("model_type", None)
    values.pop("transformers_version", None)
    return cls.from_dict(values)


def build_model(model_type: str, directory: Path, tokenizer_dir: Path) -> None:
    """Build, perturb (so every norm and bias matters) and save a tiny random ``model_type`` with the tokenizer."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    config = tiny_config(
        model_type, vocab=len(json.loads((tokenizer_dir / "tokenizer.json").read_text())["model"]["vocab"])
    )
    torch.manual_seed(0)
    try:
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    except ValueError:  # a config class the auto class does not map (MusicGen's decoder config): its own class
        model = causal_class(model_type)._from_config(config, dtype=torch.float32)
    with torch.no_grad():
        for param in model.parameters():
            if param.is_floating_point():
                param.add_(torch.randn_like(param) * 0.02)
    model.save_pretrained(directory)
    for item in tokenizer_dir.iterdir():
        shutil.copy(item, directory / item.name)


# ----- the oracles -------------------------------------------------------------------------------------------
def _hf(module, ids: list[int], **kwargs):
    import torch

    with torch.no_grad():
        return module(input_ids=torch.tensor([ids]), use_cache=False, **kwargs)


def _close(a, b, atol=1e-4) -> bool:
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
    return a.shape == b.shape and bool(np.allclose(a, b, atol=atol * scale, rtol=1e-3))


def _layer_list(module, path: str):
    parent_path, _, name = path.rpartition(".")
    parent = module.get_submodule(parent_path) if parent_path else module
    return parent, name


def _without_blocks(module, path: str, keep):
    """A deep copy of ``module`` whose layer list (at ``path``) holds only the blocks in ``keep``."""
    import torch

    copy_ = copy.deepcopy(module)
    parent, name = _layer_list(copy_, path)
    layers = getattr(parent, name)
    keep = list(keep)
    blocks = [
        layers[i] if i not in keep[:j] else copy.deepcopy(layers[i]) for j, i in enumerate(keep)
    ]  # a repeat: a copy
    setattr(parent, name, torch.nn.ModuleList(blocks))
    config = copy_.config.get_text_config()
    for key in ("num_hidden_layers", "num_layers", "n_layer", "n_layers"):  # the count that equals the list's
        if getattr(config, key, None) == len(layers):  # (LongCat-Flash derives num_hidden_layers: twice num_layers)
            try:
                setattr(config, key, len(keep))
            except Exception:  # noqa: BLE001 - a config that derives it
                pass
    return copy_


def _with_identity_block(module, path: str, k: int | range):
    """A deep copy of ``module`` whose block ``k`` (or blocks) returns its input (in the block's own output
    structure)."""
    copy_ = copy.deepcopy(module)
    parent, name = _layer_list(copy_, path)
    for i in [k] if isinstance(k, int) else k:
        block = getattr(parent, name)[i]

        def forward(*args, original=block.forward, **kwargs):
            out = original(*args, **kwargs)
            hidden = args[0] if args else kwargs["hidden_states"]
            return (hidden, *out[1:]) if isinstance(out, tuple) else hidden

        block.forward = forward
    return copy_


def _hf_last_logits(module, ids):
    return _hf(module, ids).logits[0, -1].float()


# ----- the checks --------------------------------------------------------------------------------------------
def run_checks(model, columns=COLUMNS) -> dict:
    """``{column: (status, note)}`` for one loaded model, for each of ``columns``."""
    import torch

    from layerscope.errors import LayerscopeError

    ids = [model.encode(p) for p in PROMPTS]
    results = {}
    checks = {"capture": _capture, "lens": _lens, "ablate": _ablate, "patch": _patch, "echo": _echo}
    for column in columns:
        check = checks[column]
        try:
            with torch.no_grad():
                problem = check(model, ids)
            results[column] = ("pass", "") if problem is None else ("FAIL", problem)
        except LayerscopeError as exc:
            results[column] = ("refused", str(exc).splitlines()[0][:240])
        except Exception as exc:  # noqa: BLE001 - the matrix records every crash
            results[column] = ("error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:180] if str(exc) else ''}")
    return results


def _expected_states(model, seq) -> list:
    """HF's residual stream of ``seq`` alone, one ``(pos, d_model)`` array per depth (embed, blocks).

    Most models list the embedding output first (``hidden_states[k + 1]`` is block ``k``); Mamba and RWKV
    list block ``k`` as ``hidden_states[k]`` and the final norm's output last: there the embedding output
    is the input embedding of the ids. The last block may be listed after the final norm (None: checked
    through the final norm below).
    """
    import torch

    n = model.n_layers
    states = [s[0].float().numpy() for s in _hf(model.module, seq, output_hidden_states=True).hidden_states]
    if len(states) != n + 1:
        raise AssertionError(f"HF lists {len(states)} hidden states for {n} blocks")
    embedded = model.module.get_input_embeddings()(torch.tensor([seq]))[0].detach().float().numpy()
    if not _close(states[0], embedded) and _close(states[0], _capture_depths(model, seq, [1])[0]):
        return [embedded, *states[:n]]  # block-first listing
    try:  # the last block's own output: HF lists it unnormed when one more block (an identity) follows it
        extended = _with_identity_block(
            _without_blocks(model.module, model.parts.layers_path, [*range(n), n - 1]), model.parts.layers_path, n
        )
        more = _hf(extended, seq, output_hidden_states=True).hidden_states
        if len(more) == n + 2:
            states[n] = more[n][0].float().numpy()
    except Exception:  # noqa: BLE001 - then the last block is checked through the final norm
        pass
    return states


def _capture_depths(model, seq, depths):
    from layerscope.capture.engine import capture_residuals
    from layerscope.capture.prompts import prompts_at

    return capture_residuals(model, prompts_at([seq], "all"), depths)[:, : len(seq)]


def _capture(model, ids):
    import numpy as np

    from layerscope.capture.engine import capture_residuals
    from layerscope.capture.prompts import prompts_at
    from layerscope.models.block_check import check_blocks

    n = model.n_layers
    check_blocks(model)  # what capture refuses is refused before HF's listing is read as blocks
    try:
        expected = [_expected_states(model, seq) for seq in ids[:2]]
    except AssertionError as exc:
        return str(exc)
    for side in ("right", "left"):
        array = capture_residuals(model, prompts_at(ids[:2], "all"), list(range(n + 1)), padding_side=side)
        start = 0
        for p, seq in enumerate(ids[:2]):
            got = array[:, start : start + len(seq)]  # (layer, pos, d)
            start += len(seq)
            for depth in range(n + 1):
                want = expected[p][depth]
                if _close(got[depth], want):
                    continue
                if depth == n and model.final_norm is not None:
                    normed = model.final_norm(_tensor(model, got[depth])).float().numpy()
                    if _close(normed, want):
                        continue
                name = "embed" if depth == 0 else f"block {depth - 1}"
                err = float(np.abs(got[depth] - want).max()) if got[depth].shape == want.shape else "shape"
                return f"{name} differs from HF ({side} padding; max error {err})"
    return None


def _tensor(model, array):
    import torch

    return torch.as_tensor(array, dtype=model.dtype)


def _lens(model, ids):
    import torch

    from layerscope.capture.engine import capture_residuals
    from layerscope.capture.logit_lens import lens_logits
    from layerscope.capture.prompts import prompts_at

    n = model.n_layers
    seq = ids[0]
    rows = capture_residuals(model, prompts_at([seq], "last"), list(range(1, n + 1)))[:, 0]  # (n, d)
    logits = lens_logits(model, rows)  # (n, vocab)
    for k in range(n):
        if k == n - 1:
            want = _hf_last_logits(model.module, seq)
        else:
            try:
                want = _hf_last_logits(_without_blocks(model.module, model.parts.layers_path, range(k + 1)), seq)
            except Exception:  # noqa: BLE001 - a model that cannot run with fewer blocks: the later ones as identity
                path = model.parts.layers_path
                want = _hf_last_logits(_with_identity_block(model.module, path, range(k + 1, n)), seq)
        got = logits[k]
        if int(got.argmax()) != int(want.argmax()):
            return f"block {k}: top-1 {int(got.argmax())} where HF gives {int(want.argmax())}"
        diff = float((torch.softmax(got, -1) - torch.softmax(want, -1)).abs().max())
        if diff > 1e-4:
            return f"block {k}: same top-1, probabilities off by up to {diff:.2g}"
    return None


def _ablate(model, ids):
    import torch

    from layerscope.capture.ablation import EncodedTask, LayerAblation

    answers = [[int(seq[-1])] for seq in ids]
    engine = LayerAblation(model, EncodedTask([list(s) for s in ids], answers), needed=[(0,), (1,)])
    for k in (0, 1):
        got = engine.run((k,))
        oracles = []
        for build in (
            lambda: _without_blocks(
                model.module, model.parts.layers_path, [i for i in range(model.n_layers) if i != k]
            ),
            lambda: _with_identity_block(model.module, model.parts.layers_path, k),
        ):
            try:
                oracles.append(build())
            except Exception:  # noqa: BLE001 - an oracle transformers cannot build
                continue
        problems = []
        for oracle in oracles:
            try:
                wants = [_hf_last_logits(oracle, seq) for seq in ids]
            except Exception as exc:  # noqa: BLE001
                problems.append(f"oracle: {type(exc).__name__}")
                continue
            bad = None
            for i, want in enumerate(wants):
                p = float(torch.softmax(want, -1)[answers[i][0]])
                if got.tokens[i] != [int(want.argmax())] or abs(got.p_first[i] - p) > 1e-4:
                    bad = f"block {k} removed: prompt {i} gives {got.tokens[i]} p={got.p_first[i]:.4g}, HF {int(want.argmax())} p={p:.4g}"
                    break
            if bad is None:
                break
            problems.append(bad)
        else:
            return problems[0] if problems else "no oracle"
    return None


def _hooked_logits(module, layers, ids, depth: int, position: int, value=None):
    """HF's last-position logits of ``ids`` with the residual stream at ``depth`` (``0``: block 0's input,
    ``k + 1``: block ``k``'s output) set to ``value`` at ``position``, and the stream's value there as it was."""
    import torch

    seen = {}

    def replace(x):
        seen["x"] = x[0, position].clone()
        if value is not None:
            x = x.clone()
            x[0, position] = value
        return x

    if depth == 0:

        def hook(module_, args, kwargs):
            if args:
                return (replace(args[0]), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": replace(kwargs["hidden_states"])}

        handle = layers[0].register_forward_pre_hook(hook, with_kwargs=True)
    else:

        def hook(module_, args, out):
            return type(out)([replace(out[0]), *out[1:]]) if isinstance(out, (tuple, list)) else replace(out)

        handle = layers[depth - 1].register_forward_hook(hook)
    try:
        with torch.no_grad():
            logits = module(input_ids=torch.tensor([ids]), use_cache=False).logits[0, -1].float()
    finally:
        handle.remove()
    return logits, seen["x"]


def _patch(model, ids):
    """Denoising patches of the residual stream against HF with a hook (``None``, or the first difference)."""
    from layerscope.capture.patching import Cell, PairIds, PatchEngine

    clean = list(ids[0])
    corrupt = list(clean)
    corrupt[2] = clean[3] if clean[3] != clean[2] else clean[1]  # one token changed
    answer, wrong = int(clean[-1]), int(corrupt[2])
    pair = PairIds(tuple(clean), tuple(corrupt), answer, wrong if wrong != answer else answer + 1)
    engine = PatchEngine(model, pair, parts=("resid",), full_vocab=True, batch_size=8)
    cells = [Cell("resid", d, p) for d in range(model.n_layers + 1) for p in (2, len(clean) - 1)]
    got = engine.run_cells(cells, "denoise")
    for row, cell in zip(got, cells):
        _, source = _hooked_logits(model.module, model.layers, clean, cell.layer, cell.position)
        want, _ = _hooked_logits(model.module, model.layers, corrupt, cell.layer, cell.position, source)
        if not _close(row, want):
            err = float((row - want).abs().max())
            return (
                f"resid {cell.layer} at position {cell.position}: logits differ from HF's hooked forward by {err:.2g}"
            )
    return None


def _echo(model, ids):
    import torch

    from layerscope.experiments.compare import compare
    from layerscope.experiments.echo import echo
    from layerscope.experiments.echo_probe import next_token_stats

    result = echo(models=[model], tokens=["red", "John"], prompts=["The word is"], max_new_tokens=3)
    if result.failures:
        from layerscope.errors import LayerscopeError

        raise LayerscopeError(next(iter(result.failures.values())))
    compare([model, model], prompts=list(PROMPTS), weights=False)
    stats = next_token_stats(model, ids, [s[-1] for s in ids], top_k=3)
    for seq, stat in zip(ids, stats):
        want = torch.softmax(_hf_last_logits(model.module, seq), -1)
        if abs(stat.p_target - float(want[seq[-1]])) > 1e-4 or stat.top_ids[0] != int(want.argmax()):
            return f"echo probe p={stat.p_target:.4g} where HF gives {float(want[seq[-1]]):.4g}"
    return None


def _runs(module) -> None:
    """Transformers' own forward on a padded batch and its own greedy decoding (raise where either fails)."""
    import torch

    ids = torch.tensor([[2, 5, 7, 9], [2, 6, 0, 0]])
    with torch.no_grad():
        module(input_ids=ids, attention_mask=(ids != 0).long(), use_cache=False)
        module.generate(
            ids[:1], max_new_tokens=2, do_sample=False, pad_token_id=0, eos_token_id=None, num_return_sequences=1
        )


# ----- one type, in a worker ---------------------------------------------------------------------------------
def check_type(model_type: str, root: Path, tokenizer_dir: Path) -> dict:
    """The row of ``model_type``: ``{"type", "built": bool, "note", column: [status, note]}``."""
    import layerscope
    from layerscope import progress

    progress.set_enabled(False)
    directory = root / model_type
    row = {"type": model_type, "built": False, "note": ""}
    try:
        build_model(model_type, directory, tokenizer_dir)
        import transformers

        named = json.loads((directory / "config.json").read_text())["architectures"][0]
        reloaded = getattr(transformers, named).from_pretrained(directory)  # transformers itself reloads it
        _runs(reloaded.eval())
    except Exception as exc:  # noqa: BLE001 - not buildable from the shrunk config: listed apart
        row["note"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ''}"
        if model_type in WHY_NOT_BUILT:
            row["note"] = f"{WHY_NOT_BUILT[model_type]} ({row['note']})"
        return row
    row["built"] = True
    try:
        model = layerscope.load_model(str(directory))
    except layerscope.LayerscopeError as exc:
        return {**row, **dict.fromkeys(COLUMNS, ("refused", "load: " + str(exc).splitlines()[0][:180]))}
    except Exception as exc:  # noqa: BLE001
        return {**row, **dict.fromkeys(COLUMNS, ("error", f"load: {type(exc).__name__}: {str(exc)[:160]}"))}
    return {**row, **run_checks(model)}


def worker(types: list[str], root: Path, tokenizer_dir: Path) -> None:
    """Check ``types`` in turn, one JSON line each on stdout (announced first, so a hang names its type)."""
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    out = sys.stdout
    sys.stdout = sys.stderr  # whatever the models print stays off the protocol
    for model_type in types:
        out.write(json.dumps({"start": model_type}) + "\n")
        out.flush()
        row = check_type(model_type, root, tokenizer_dir)
        out.write(json.dumps(row) + "\n")
        out.flush()


# ----- the matrix ----------------------------------------------------------------------------------------------
def run_matrix(types: list[str], timeout: float, on_row=None) -> list[dict]:
    """One row per type; a worker restarts after a type that hangs past ``timeout`` seconds or kills it.
    ``on_row(row)`` is called as each row comes (to keep what an interrupted run measured)."""
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="layerscope-arch-") as tmp:
        root = Path(tmp)
        build_tokenizer(root / "_tokenizer")
        pending = list(types)
        deaths, rows_before = 0, 0
        while pending:
            proc = subprocess.Popen(
                [sys.executable, __file__, "--worker", ",".join(pending), "--root", str(root)],
                stdout=subprocess.PIPE,
                text=True,
            )
            current, last = None, time.monotonic()
            while True:
                ready, _, _ = select.select([proc.stdout], [], [], 5)
                if ready:
                    line = proc.stdout.readline()
                    if not line:
                        break
                    message = json.loads(line)
                    last = time.monotonic()
                    if "start" in message:
                        current = message["start"]
                        continue
                    rows[message["type"]] = message
                    if on_row is not None:
                        on_row(message)
                    pending.remove(message["type"])
                    print(_row_line(message), flush=True)
                    current = None
                elif time.monotonic() - last > timeout:
                    proc.kill()
                    break
            proc.wait()
            if current is not None:  # hung or died inside ``current``
                why = "timed out" if time.monotonic() - last > timeout else f"worker died (exit {proc.returncode})"
                rows[current] = {"type": current, "built": True, **dict.fromkeys(COLUMNS, ("error", why))}
                if on_row is not None:
                    on_row(rows[current])
                pending.remove(current)
                print(_row_line(rows[current]), flush=True)
            elif pending and proc.returncode not in (0, None):  # killed between types (out of memory): go on
                deaths = deaths + 1 if rows_before == len(rows) else 0
                if deaths >= 2:
                    raise SystemExit(f"the worker keeps dying before {pending[0]} (exit {proc.returncode})")
            rows_before = len(rows)
    return [rows[t] for t in types]


def _row_line(row: dict) -> str:
    if not row["built"]:
        return f"{row['type']:<28} not built: {row['note']}"
    return f"{row['type']:<28} " + "  ".join(f"{c}={row[c][0]}" for c in COLUMNS)


def markdown(rows: list[dict], seconds: float) -> str:
    """The generated table: per column counts, then one row per type with the first line of each non-pass."""
    import transformers

    rows = sorted(rows, key=lambda r: r["type"])
    built = [r for r in rows if r["built"]]
    unmeasured = [r["type"] for r in rows if r["built"] is None]
    lines = [
        "# Architecture matrix",
        "",
        "<!-- generated by benchmarks/architectures.py: do not edit by hand -->",
        "",
        f"Every `model_type` in transformers {transformers.__version__}'s `MODEL_FOR_CAUSAL_LM_MAPPING_NAMES` "
        f"({len(rows)} types{f', {len(rows) - len(unmeasured)} measured' if unmeasured else ''}; {len(built)} that "
        "transformers builds, reloads and runs from a tiny config), "
        "as a tiny random model checked against transformers' own forward "
        "(`python benchmarks/architectures.py --out docs/architectures.md --json docs/architectures.json --readme README.md`). "
        "`pass`: the numbers equal HF's; `FAIL`: a wrong number; `refused`: one line naming what is missing "
        "(exit 2); `error`: an internal error (exit 1).",
        "",
        "| column | " + " | ".join(STATUSES) + " |",
        "|---|" + "---|" * len(STATUSES),
    ]
    for column in COLUMNS:
        counts = [sum(1 for r in built if r[column][0] == s) for s in STATUSES]
        lines.append(f"| {column} | " + " | ".join(str(c) for c in counts) + " |")
    lines += ["", "| type | " + " | ".join(COLUMNS) + " | notes |", "|---|" + "---|" * (len(COLUMNS) + 1)]
    for row in built:
        notes = "; ".join(f"{c}: {row[c][1]}" for c in COLUMNS if row[c][0] != "pass" and row[c][1])
        notes = notes.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {row['type']} | " + " | ".join(row[c][0] for c in COLUMNS) + f" | {notes} |")
    unbuilt = [r for r in rows if r["built"] is False]
    if unbuilt:
        lines += ["", "Not built, reloaded or run by transformers itself from the tiny config (not counted):", ""]
        lines += [f"- {r['type']}: {r['note'].replace('|', '/')}" for r in unbuilt]
    if unmeasured:
        lines += ["", f"Not measured yet ({len(unmeasured)}; `--merge` with this table's JSON measures them): "]
        lines += [", ".join(unmeasured)]
    return "\n".join(lines) + "\n"


README_BEGIN, README_END = "<!-- architectures:begin -->", "<!-- architectures:end -->"


def summary(text: str) -> str:
    """The counts part of the generated table (its first paragraph and the per-column counts)."""
    return text.split("\n\n| type")[0].split("-->\n\n", 1)[1]


def update_readme(path: Path, text: str) -> None:
    """Replace what lies between the README's two architecture markers with the summary of ``text``."""
    readme = path.read_text()
    if README_BEGIN not in readme or README_END not in readme:
        raise SystemExit(f"{path} has no {README_BEGIN} ... {README_END} markers")
    head, rest = readme.split(README_BEGIN, 1)
    path.write_text(f"{head}{README_BEGIN}\n{summary(text)}\n{README_END}{rest.split(README_END, 1)[1]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", help="comma-separated model types (default: all)")
    parser.add_argument("--out", help="write the markdown table there")
    parser.add_argument("--json", help="write the rows as JSON there")
    parser.add_argument("--readme", help="put the counts between the architecture markers of this README")
    parser.add_argument("--render-only", action="store_true", help="only write the table of the --merge rows")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one type may take")
    parser.add_argument("--merge", help="rows of an earlier, interrupted run (JSON) to keep; only the others run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        root = Path(args.root)
        worker(args.worker.split(","), root, root / "_tokenizer")
        return 0
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    types = args.types.split(",") if args.types else sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    start = time.monotonic()
    done = {r["type"]: r for r in json.loads(Path(args.merge).read_text())} if args.merge else {}

    def write(row=None) -> str:  # after each type: an interrupted run keeps its rows (resume with --merge)
        if row is not None:
            done[row["type"]] = row
        rows = [done.get(t) or {"type": t, "built": None, "note": ""} for t in types]
        text = markdown(rows, time.monotonic() - start)
        for path, content in (
            (args.out, text),
            (args.json, json.dumps([r for r in rows if r["built"] is not None], indent=1)),
        ):
            if path:
                Path(path + ".tmp").write_text(content)
                os.replace(path + ".tmp", path)
        return text

    if not args.render_only:
        run_matrix([t for t in types if t not in done], args.timeout, on_row=write)
    text = write()
    if args.readme:
        update_readme(Path(args.readme), text)
    print(text.split("\n\n| type")[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
