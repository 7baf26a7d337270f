"""The capture engine against Hugging Face's own ``output_hidden_states`` (float32, atol 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest
from hf_oracles import hf_hidden_states

from layerscope.capture import FINAL_NORM, capture_residuals, parse_layers, prompts_at
from layerscope.capture.deepest_block import rows_only_parts

TEXTS = ["The word is red.", "John", "When John and Mary went to the store", "1+2=3", "Paris London Rome"]


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_every_layer_equals_hf_hidden_states(tiny, padding_side):
    ids = [tiny.encode(t) for t in TEXTS]
    layers = parse_layers("all", tiny.n_layers) + [FINAL_NORM]
    got = capture_residuals(tiny, prompts_at(ids, "all"), layers, batch_size=3, padding_side=padding_side)
    assert got.shape == (tiny.n_layers + 2, sum(map(len, ids)), tiny.d_model)
    start = 0
    for prompt in ids:
        hf = hf_hidden_states(tiny, prompt)  # n_layers + 2 entries: 0..n-1, post-norm, pre-norm
        rows = got[:, start : start + len(prompt)]
        for layer in range(tiny.n_layers):
            np.testing.assert_allclose(rows[layer], hf[layer], atol=1e-5, rtol=0)
        np.testing.assert_allclose(rows[tiny.n_layers], hf[-1], atol=1e-5, rtol=0)  # after the last layer
        np.testing.assert_allclose(rows[-1], hf[tiny.n_layers], atol=1e-5, rtol=0)  # after the final norm
        start += len(prompt)


def test_pooling_and_last_position_match_a_naive_loop(tiny):
    ids = [tiny.encode(t) for t in TEXTS]
    groups = [[1, -1], [0], [2, 3, 4], [-2, -1], [1]]
    layers = ["embed", 1, -1]  # depths 0, 2 and n_layers (the last block, before the final norm)
    resolved = parse_layers(layers, tiny.n_layers)
    assert resolved == [0, 2, tiny.n_layers]
    for pool in ("mean", "first", "last"):
        got = capture_residuals(tiny, prompts_at(ids, groups), resolved, pool=pool, batch_size=2)
        for item, (prompt, group) in enumerate(zip(ids, groups)):
            hf = hf_hidden_states(tiny, prompt)
            positions = [p % len(prompt) for p in group]
            for slot, layer in enumerate(resolved):
                source = hf[-1] if layer == tiny.n_layers else hf[layer]
                rows = source[positions]
                want = {"mean": rows.mean(0), "first": rows[0], "last": rows[-1]}[pool]
                np.testing.assert_allclose(got[slot, item], want, atol=1e-5, rtol=0)
    last = capture_residuals(tiny, prompts_at(ids, "last"), resolved, batch_size=4)
    for item, prompt in enumerate(ids):
        np.testing.assert_allclose(last[1, item], hf_hidden_states(tiny, prompt)[2][-1], atol=1e-5, rtol=0)


def test_stops_after_the_deepest_layer_asked_and_removes_hooks(tiny_models):
    model = tiny_models["llama"]
    rows_only_parts(model, 0)  # the probe of block 0 (once per model) runs before the calls are counted
    modules = [*model.layers, model.final_norm]
    before = [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in modules]
    calls = []
    handles = [
        layer.register_forward_hook(lambda m, a, o, i=i: calls.append(i)) for i, layer in enumerate(model.layers)
    ]
    norm_calls = []
    handles.append(model.final_norm.register_forward_hook(lambda m, a, o: norm_calls.append(1)))
    try:
        capture_residuals(model, prompts_at([model.encode("red")], "last"), [0, 1])
        assert calls == [0] and norm_calls == []
        calls.clear()
        capture_residuals(model, prompts_at([model.encode("red")], "last"), [0])
        assert calls == []
    finally:
        for handle in handles:
            handle.remove()
    assert [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in modules] == before


def test_memory_budget_sends_the_result_to_disk_with_the_same_numbers(tiny, tmp_path):
    ids = [tiny.encode(t) for t in TEXTS]
    layers = parse_layers("all", tiny.n_layers)
    in_ram = capture_residuals(tiny, prompts_at(ids, "all"), layers)
    on_disk = capture_residuals(tiny, prompts_at(ids, "all"), layers, memory_budget=1024)
    assert not isinstance(in_ram, np.memmap) and isinstance(on_disk, np.memmap)
    np.testing.assert_array_equal(in_ram, on_disk)
    kept = capture_residuals(tiny, prompts_at(ids, "last"), layers, path=tmp_path / "r.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), kept)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.npy"]
