"""A slice of the architecture matrix (``benchmarks/architectures.py``) on every ``make test``.

One tiny random model per cause the matrix found (a final norm under another name or inside a multimodal
wrapper, a head transform, no final norm, a logit scale or soft-cap, blocks that return tuples, RoBERTa-style
positions, positions that ignore ``position_ids``, a layer count the config states another way, no KV cache,
blocks listed first in ``hidden_states``, sizes per layer, attention with a compressed KV cache (MLA), a final
norm divided by a constant, a state each block hands the next, a config class the causal-LM auto class does not
map) and every family the README names, each checked against
transformers' own forward by the matrix's checks: capture, logit lens, ablation, patching, echo and compare. The
architectures layerscope cannot read (several streams, a time-major layout, a looped block, a learned prompt, layers
split across stacks, one embedding per codebook) are refused in one line (``LayerscopeError``), never read wrongly.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import layerscope

_SPEC = importlib.util.spec_from_file_location(
    "architectures", Path(__file__).parents[2] / "benchmarks" / "architectures.py"
)
matrix = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(matrix)

#: type -> the cause it stands for (every column passes)
PASSING = {
    "llama": "README family",
    "qwen3": "README family",
    "gemma2": "README family; final soft-cap",
    "gemma3_text": "README family (the default model's)",
    "gemma3": "final norm inside a multimodal wrapper (Gemma3ForConditionalGeneration)",
    "gpt_oss": "README family",
    "olmo3": "README family",
    "mamba": "final norm named norm_f; blocks listed first in hidden_states",
    "cohere": "logit scale",
    "recurrent_gemma": "soft-cap under another key",
    "bloom": "blocks return tuples (ablation keeps the structure)",
    "roberta": "positions from padding_idx + 1; a head transform before the output embedding",
    "marian": "sinusoidal positions that ignore position_ids; no final norm",
    "bart": "post-LN: no final norm",
    "openai-gpt": "no KV cache; post-LN",
    "megatron-bert": "a final norm, then a head transform",
    "deepseek_v3": "attention with a compressed KV cache (MLA) and shared experts",
    "longcat_flash": "a layer count the config derives (num_hidden_layers: twice num_layers)",
    "emu3": "a text config AutoModelForCausalLM does not map (loaded by the class its config names)",
    "minicpm3": "a final norm whose output is divided by a constant before the output embedding",
    "zaya": "a state each block hands the next beside the residual stream (its router's)",
}
#: the types whose echo and compare run too (the slowest column): a multimodal wrapper, a model without KV cache
WITH_ECHO = ("gemma3", "openai-gpt")
#: the types whose residual-stream patching is checked too: a KV cache, a multimodal wrapper, tuple outputs, a
#: recurrent state, list outputs and no cache, a final norm after the last block (Mamba) and a head transform
#: (RoBERTa) applied to the patched last block, a router state handed from block to block (Zaya: a skipped block
#: hands on the base run's)
WITH_PATCH = ("llama", "gemma3", "bloom", "recurrent_gemma", "openai-gpt", "mamba", "roberta", "zaya")
#: type -> words the one-line refusal names
REFUSED = {
    "xlm": "not one list of modules",
    "deepseek_v4": "4 residual streams stacked on dimension 2",  # hyper-connections
    "xlnet": "time-major",
    "dory": "runs 2 times in one forward",  # a looped model: its recurrent block runs once per loop
    "gemma3n_text": "4 residual streams stacked on dimension 0",  # AltUp; its config gives intermediate_size per layer (a list)
    "reformer": "two residual streams",  # reversible blocks: each hands the next a second stream
    "cpmant": "positions of its own before the input's",  # a learned prompt run before the tokens
    "prophetnet": "streams one after another",  # n-gram streams after the main one
}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("matrix-tokenizer")
    matrix.build_tokenizer(directory)
    return directory


def _load(model_type: str, tmp_path: Path, tokenizer_dir: Path):
    matrix.build_model(model_type, tmp_path / model_type, tokenizer_dir)
    return layerscope.load_model(str(tmp_path / model_type))


@pytest.mark.parametrize("model_type", sorted(PASSING))
def test_every_column_equals_transformers(model_type, tmp_path, tokenizer_dir):
    columns = ("capture", "lens", "ablate")
    columns += ("patch",) * (model_type in WITH_PATCH) + ("echo",) * (model_type in WITH_ECHO)
    results = matrix.run_checks(_load(model_type, tmp_path, tokenizer_dir), columns)
    assert {column: status for column, (status, _) in results.items()} == dict.fromkeys(columns, "pass"), results


@pytest.mark.parametrize("model_type", sorted(REFUSED))
def test_unreadable_architectures_are_refused_in_one_line(model_type, tmp_path, tokenizer_dir):
    results = matrix.run_checks(_load(model_type, tmp_path, tokenizer_dir), ("capture", "lens", "ablate", "patch"))
    for column in ("capture", "lens"):
        status, note = results[column]
        assert status == "refused", results
        assert REFUSED[model_type] in note and "\n" not in note
    assert results["patch"][0] == "refused" and "\n" not in results["patch"][1], results  # never patched wrongly
    assert results["ablate"][0] in ("pass", "refused"), results  # removing a whole block needs no stream


def test_patching_a_hybrid_whose_cache_cannot_be_batched(tmp_path, tokenizer_dir):
    """Jamba's cache mixes attention and Mamba layers that cannot be repeated per row: the patch engine runs every
    position each time instead of crashing, and equals transformers' forward with a hook."""
    results = matrix.run_checks(_load("jamba", tmp_path, tokenizer_dir), ("patch",))
    assert results == {"patch": ("pass", "")}, results


#: type -> words the one-line refusal at load names
REFUSED_AT_LOAD = {
    "musicgen": "MusicgenForCausalLM: its input embedding is a ModuleList",  # one embedding table per codebook
    "hrm_text": "its 2 layers are split across 2 lists",  # HRM's two stacks, run in cycles
}


@pytest.mark.parametrize("model_type", sorted(REFUSED_AT_LOAD))
def test_architectures_without_one_embedding_or_one_list_of_blocks_are_refused_at_load(
    model_type, tmp_path, tokenizer_dir
):
    """Loading them is refused in one line naming what they have instead, never an internal error in every
    command."""
    matrix.build_model(model_type, tmp_path / model_type, tokenizer_dir)
    with pytest.raises(layerscope.LayerscopeError, match=REFUSED_AT_LOAD[model_type]) as refused:
        layerscope.load_model(str(tmp_path / model_type))
    assert "\n" not in str(refused.value)
