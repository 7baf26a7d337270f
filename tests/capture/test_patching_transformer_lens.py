"""Patching cells against TransformerLens 4.3's ``patching`` module, on a tiny random Llama both run from one set of
weights.

TransformerLens 4.3 wraps the loaded Hugging Face module (``TransformerBridge.boot_transformers(name,
hf_model=...)``, offline: the name is only a label); the bridge switches the module's attention to ``eager`` for
its hooks, so it wraps a copy and layerscope's own module keeps ``sdpa``. Its ``get_act_patch_*`` functions run
one whole forward per cell (denoising: the clean run's activation into the corrupt run) and return
``(layers, positions)`` or ``(layers, heads)`` of the metric, here ``logit(answer) - logit(wrong)`` at the last
position.

Layer mapping (TransformerLens -> layerscope's ``patch.csv``):

* ``get_act_patch_resid_pre`` layer ``k`` -> ``resid`` at depth ``k``: ``embed`` for ``k = 0``, block ``k - 1``'s
  output (the layer named ``k - 1``) after; so TransformerLens' ``resid_pre`` of layer ``k + 1`` is layerscope's
  layer ``k``. layerscope's last depth (the last block's output) has no ``resid_pre``;
* ``get_act_patch_attn_out`` / ``get_act_patch_mlp_out`` layer ``k`` -> ``attn`` / ``mlp`` of block ``k``;
* ``get_act_patch_attn_head_out_all_pos`` (layer ``k``, head ``h``) -> ``heads`` of block ``k``, head ``h``, every
  position (``head_positions="all"``): both replace the head's slice of the output projection's input (``hook_z``).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import layerscope

#: a short pair (14 tokens of the tiny tokenizer, changed at position 7): TransformerLens runs one whole forward per cell
CLEAN, CORRUPT = "John and Mary: John gave it to", "John and Mary: Mary gave it to"


@pytest.fixture(scope="module")
def llama(tiny_models):
    return tiny_models["llama"]


@pytest.fixture(scope="module")
def transformer_lens_cells(llama) -> dict[str, np.ndarray]:
    """``{part: (layers, positions or heads)}`` from TransformerLens' four patching functions."""
    from transformer_lens import TransformerBridge, patching  # imported here: it takes seconds

    bridge = TransformerBridge.boot_transformers(
        "tiny-llama", hf_model=copy.deepcopy(llama.module), tokenizer=llama.tokenizer, device="cpu", dtype=torch.float32
    )
    clean, corrupt = torch.tensor([llama.encode(CLEAN)]), torch.tensor([llama.encode(CORRUPT)])
    (answer,), (wrong,) = llama.encode(" Mary", bos=False), llama.encode(" John", bos=False)
    with torch.inference_mode():
        _, cache = bridge.run_with_cache(clean)

        def metric(logits):
            return logits[0, -1, answer] - logits[0, -1, wrong]

        functions = {
            "resid": patching.get_act_patch_resid_pre,
            "attn": patching.get_act_patch_attn_out,
            "mlp": patching.get_act_patch_mlp_out,
            "heads": patching.get_act_patch_attn_head_out_all_pos,
        }
        return {part: function(bridge, corrupt, cache, metric).double().numpy() for part, function in functions.items()}


@pytest.fixture(scope="module")
def layerscope_cells(llama):
    return layerscope.patch(CLEAN, CORRUPT, answer=" Mary", wrong=" John", part="all", model=llama).cells


@pytest.mark.parametrize("part", ["resid", "attn", "mlp", "heads"])
def test_every_cell_equals_transformer_lens(part, llama, transformer_lens_cells, layerscope_cells):
    theirs = transformer_lens_cells[part]
    rows = layerscope_cells[layerscope_cells["part"] == part]
    n, length = llama.n_layers, len(llama.encode(CLEAN))
    if part == "heads":
        assert rows["position"].isna().all()
        ours = rows.pivot(index="depth", columns="head", values="value").to_numpy()  # depth = block + 1
        assert theirs.shape == ours.shape == (n, 4)
    else:
        ours = rows.pivot(index="depth", columns="position", values="value").to_numpy()
        if part == "resid":  # depths 0..n: embed, blocks 0..n-1; resid_pre covers 0..n-1
            assert ours.shape == (n + 1, length)
            ours = ours[:n]
        assert theirs.shape == ours.shape == (n, length)
    assert ours.max() - ours.min() > 1e-2  # the cells differ from one another (measured spread 0.026 to 0.14)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=0)  # measured: within 2.7e-7 of cells near 0.5
