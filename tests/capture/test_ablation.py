"""The ablation engine against a plain loop that deletes layers from a copy of the model."""

from __future__ import annotations

import pytest
import torch
from ablation_oracle import MIXED_ANSWERS, MIXED_PROMPTS, naive_predictions

import layerscope
from layerscope.capture.ablation import LayerAblation, encode_task, patched_layers
from layerscope.errors import LayerscopeError
from layerscope.tasks import arithmetic_task

PROMPTS, ANSWERS = MIXED_PROMPTS, MIXED_ANSWERS


def expected(model, encoded, removed, scoring):
    if scoring == "first":
        seqs = encoded.prompt_ids
        scored = [1] * len(seqs)
    else:
        seqs = [p + a[:-1] for p, a in zip(encoded.prompt_ids, encoded.answer_ids)]
        scored = [len(a) for a in encoded.answer_ids]
    return naive_predictions(model, removed, seqs, scored)


def check_against_naive(model, encoded, configs, scoring, batch_size):
    engine = LayerAblation(model, encoded, scoring=scoring, batch_size=batch_size, needed=configs)
    for removed in configs:
        got = engine.run(removed)
        want = expected(model, encoded, removed, scoring)
        for i, (pred, ref, answer) in enumerate(zip(got.tokens, want, encoded.answer_ids)):
            wrong = next((j for j, (p, t) in enumerate(zip(ref, answer)) if p != t), None)
            assert got.correct[i] == (wrong is None), (removed, i)
            assert pred == (ref if wrong is None else answer[:wrong] + [ref[wrong]]), (removed, i)


@pytest.mark.parametrize("scoring", ["first", "greedy"])
def test_equals_deleting_layers(tiny, scoring):
    encoded = encode_task(tiny, PROMPTS, ANSWERS)
    configs = [(), (0,), (1,), (2,), (1, 2), (0, 2)]
    # batch_size 4 mixes lengths: left padding is exercised; batch_size 1 has none.
    check_against_naive(tiny, encoded, configs, scoring, batch_size=4)
    check_against_naive(tiny, encoded, [(1,)], scoring, batch_size=1)


def test_patched_layers_restore_the_model(tiny):
    ids = torch.tensor([tiny.encode("5+2=")])
    before = tiny.module(input_ids=ids).logits
    with pytest.raises(RuntimeError), patched_layers(tiny.layers, (1,), torch.zeros(1, 5, tiny.d_model)):
        raise RuntimeError("boom")
    assert all("forward" not in layer.__dict__ for layer in tiny.layers)
    torch.testing.assert_close(tiny.module(input_ids=ids).logits, before, rtol=0, atol=0)


def test_patched_layers_put_back_an_instance_forward(tiny_models):
    """A layer that had its own ``forward`` (as accelerate installs) gets that very one back."""
    layers = tiny_models["llama"].layers
    own = [layers[0].forward, layers[2].forward]  # bound methods, stored on the instances
    layers[0].forward, layers[2].forward = own
    try:
        with patched_layers(layers, (2,), torch.zeros(1, 5, 64)):
            assert layers[0].__dict__["forward"] is not own[0] and layers[2].__dict__["forward"] is not own[1]
        assert layers[0].__dict__["forward"] is own[0] and layers[2].__dict__["forward"] is own[1]
        assert "forward" not in layers[1].__dict__
    finally:
        for layer in layers:
            layer.__dict__.pop("forward", None)


def _offloading_device_map(model) -> dict:
    """A device map for a llama-like tiny model with block 1 offloaded to disk: accelerate then hooks every block."""
    blocks = {f"model.layers.{i}": "disk" if i == 1 else "cpu" for i in range(model.n_layers)}
    return {"model.embed_tokens": "cpu", **blocks, "model.norm": "cpu", "model.rotary_emb": "cpu", "lm_head": "cpu"}


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_accelerate_hooks_survive_an_ablation(tiny_models, tiny_model_dirs, arch):
    plain = tiny_models[arch]
    hooked = layerscope.load_model(str(tiny_model_dirs[arch]), device_map=_offloading_device_map(plain))
    hooks = [layer._hf_hook for layer in hooked.layers]
    forwards = [layer.__dict__["forward"] for layer in hooked.layers]  # accelerate's wrapper around the hook
    assert all(type(h).__name__ == "AlignDevicesHook" for h in hooks)
    assert hooked.layers[1].self_attn.q_proj.weight.device.type == "meta"  # its weights come from disk per call

    encoded = encode_task(plain, PROMPTS, ANSWERS)
    configs = [(), (0,), (1,), (2,), (1, 2), (0, 2)]
    for scoring in ("first", "greedy"):
        on_hooked = LayerAblation(hooked, encoded, scoring=scoring, batch_size=4, needed=configs)
        on_plain = LayerAblation(plain, encoded, scoring=scoring, batch_size=4, needed=configs)
        for removed in configs:
            got, want = on_hooked.run(removed), on_plain.run(removed)
            assert got.tokens == want.tokens and got.correct == want.correct, (scoring, removed)

    assert [layer._hf_hook for layer in hooked.layers] == hooks
    assert all(layer.__dict__.get("forward") is f for layer, f in zip(hooked.layers, forwards))
    # The hooked model still loads its offloaded block: the same logits as the model on one device.
    ids = torch.tensor([plain.encode("5+2=")])
    with torch.inference_mode():
        torch.testing.assert_close(hooked.module(input_ids=ids).logits, plain.module(input_ids=ids).logits)


def test_answer_tokens_follow_the_prompt(default_model):
    encoded = encode_task(default_model, ["5+2=", "12*3=", "The capital of France is"], ["7", "36", " Paris"])
    tok = default_model.tokenizer
    # Gemma splits numbers into digits: "36" after "=" is two tokens, "3" then "6".
    assert [tok.decode([t]) for t in encoded.answer_ids[1]] == ["3", "6"]
    assert tok.decode(encoded.answer_ids[2]) == " Paris"
    for prompt, answer, ids in zip(["5+2=", "12*3="], ["7", "36"], encoded.answer_ids):
        assert default_model.encode(prompt) + ids == default_model.encode(prompt + answer)
    assert encoded.split_answers == 0


def test_bad_layers_are_rejected(tiny):
    encoded = encode_task(tiny, PROMPTS[:2], ANSWERS[:2])
    with pytest.raises(LayerscopeError, match="layer 3 does not exist; valid: 0 to 2"):
        LayerAblation(tiny, encoded, needed=[(3,)])
    with pytest.raises(LayerscopeError, match="scoring"):
        LayerAblation(tiny, encoded, scoring="all")


@pytest.mark.default_model
def test_equals_deleting_layers_on_default_model(default_model):
    task = arithmetic_task(10, seed=3)
    encoded = encode_task(default_model, [i.prompt for i in task.items], [i.answer for i in task.items])
    configs = [(), (0,), (4,), (17,), (4, 5)]
    check_against_naive(default_model, encoded, configs, "first", batch_size=8)
