"""Removing a block's attention or MLP, against Hugging Face forwards with that sub-module patched to return zeros."""

from __future__ import annotations

import pytest
import torch
from ablation_oracle import MIXED_ANSWERS, MIXED_PROMPTS, part_zeroed

from layerscope.capture.ablation import LayerAblation, encode_task, patched_layers, record_outputs
from layerscope.errors import LayerscopeError
from layerscope.tasks import arithmetic_task

PROMPTS, ANSWERS = MIXED_PROMPTS, MIXED_ANSWERS


@torch.inference_mode()
def oracle_logits(model, part: str, layers, ids: list[int], keep: int) -> torch.Tensor:
    """Logits ``(keep, vocab)`` of one unpadded sequence with ``part`` of ``layers`` zeroed."""
    with part_zeroed(model, part, layers):
        return model.module(input_ids=torch.tensor([ids]), use_cache=False, logits_to_keep=keep).logits[0]


def sequences(encoded, scoring):
    if scoring == "first":
        return encoded.prompt_ids, [1] * len(encoded.prompt_ids)
    seqs = [p + a[:-1] for p, a in zip(encoded.prompt_ids, encoded.answer_ids)]
    return seqs, [len(a) for a in encoded.answer_ids]


def check_parts(model, encoded, configs, scoring, batch_size):
    engine = LayerAblation(model, encoded, scoring=scoring, batch_size=batch_size, needed=[r for _, r in configs])
    seqs, scored = sequences(encoded, scoring)
    for part, removed in configs:
        got = engine.run(removed, part=part)
        assert got.part == part and got.removed == removed
        name = {"attn": "self_attn", "mlp": "mlp"}[part]
        for i, (ids, m, answer) in enumerate(zip(seqs, scored, encoded.answer_ids)):
            ref = oracle_logits(model, name, removed, ids, m).argmax(-1).tolist()
            wrong = next((j for j, (p, t) in enumerate(zip(ref, answer)) if p != t), None)
            assert got.correct[i] == (wrong is None), (part, removed, i)
            assert got.tokens[i] == (ref if wrong is None else answer[:wrong] + [ref[wrong]]), (part, removed, i)


CONFIGS = [("attn", (0,)), ("mlp", (0,)), ("attn", (1,)), ("mlp", (2,)), ("attn", (1, 2)), ("mlp", (0, 2))]


@pytest.mark.parametrize("scoring", ["first", "greedy"])
def test_equals_zeroing_the_sub_module(tiny, scoring):
    encoded = encode_task(tiny, PROMPTS, ANSWERS)
    check_parts(tiny, encoded, CONFIGS, scoring, batch_size=4)  # mixed lengths: left padding
    check_parts(tiny, encoded, [("mlp", (1,))], scoring, batch_size=1)


@torch.inference_mode()
def test_logits_with_the_cached_prefix_equal_the_oracle(tiny):
    """The engine's forward (prefix from the cache, the rest patched) gives the oracle's logits, not only its argmax."""
    ids = tiny.encode("When John and Mary went to the store, John gave the bag to")
    x = torch.tensor([ids])
    for part, name in (("attn", "self_attn"), ("mlp", "mlp")):
        with record_outputs(tiny.layers, [0]) as outputs:
            tiny.module(input_ids=x, use_cache=False)
        with patched_layers(tiny.layers, (1, 2), outputs[0], part=part):
            got = tiny.module(input_ids=x, use_cache=False).logits[0]
        want = oracle_logits(tiny, name, (1, 2), ids, len(ids))
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(got, tiny.module(input_ids=x).logits[0], atol=1e-3)  # something was removed


def _mlp_half(layer, arch: str, h: torch.Tensor) -> torch.Tensor:
    """What a block adds through its MLP, written from each architecture's definition."""
    if arch in ("gemma2", "gemma3"):  # sandwich norms: pre- and post-feedforward
        return layer.post_feedforward_layernorm(layer.mlp(layer.pre_feedforward_layernorm(h)))
    if arch == "olmo3":  # post-norm only
        return layer.post_feedforward_layernorm(layer.mlp(h))
    out = layer.mlp(layer.post_attention_layernorm(h))  # pre-norm (llama, qwen3, gpt-oss)
    return out[0] if isinstance(out, tuple) else out


@torch.inference_mode()
def test_zero_attention_removes_exactly_its_residual_addition(tiny_models):
    """With its attention removed, a block's output is its input plus its MLP half: nothing of the attention is left,
    post-norms included (RMSNorm maps zeros to zeros)."""
    for arch, model in tiny_models.items():
        layer, ids = model.layers[1], torch.tensor([model.encode("5+2=7")])
        seen = {}
        pre = layer.register_forward_pre_hook(
            lambda m, a, k: seen.update(x=a[0] if a else k["hidden_states"]), with_kwargs=True
        )
        post = layer.register_forward_hook(lambda m, a, o: seen.update(y=o[0] if isinstance(o, tuple) else o))
        try:
            with record_outputs(model.layers, [0]) as outputs:
                model.module(input_ids=ids, use_cache=False)
            with patched_layers(model.layers, (1,), outputs[0], part="attn"):
                model.module(input_ids=ids, use_cache=False)
        finally:
            pre.remove()
            post.remove()
        torch.testing.assert_close(seen["x"], outputs[0], rtol=0, atol=0)
        want = seen["x"] + _mlp_half(layer, arch, seen["x"])
        torch.testing.assert_close(seen["y"], want, rtol=1e-6, atol=1e-6, msg=arch)


def test_bad_part_and_missing_sub_module(tiny_models):
    model = tiny_models["llama"]
    engine = LayerAblation(model, encode_task(model, PROMPTS[:2], ANSWERS[:2]), needed=[(1,)])
    with pytest.raises(LayerscopeError, match="unknown part 'head'; valid: block, attn, mlp"):
        engine.run((1,), part="head")
    mlp = model.layers[1].mlp
    del model.layers[1].mlp
    try:
        with pytest.raises(LayerscopeError, match=r"block 1 \(LlamaDecoderLayer\) has no MLP sub-module"):
            engine.run((1,), part="mlp")
    finally:
        model.layers[1].mlp = mlp
    assert all("forward" not in m.__dict__ for layer in model.layers for m in layer.modules())


@pytest.mark.default_model
def test_equals_zeroing_the_sub_module_on_default_model(default_model):
    task = arithmetic_task(8, seed=5)
    encoded = encode_task(default_model, [i.prompt for i in task.items], [i.answer for i in task.items])
    configs = [("attn", (0,)), ("mlp", (0,)), ("attn", (5,)), ("mlp", (5, 6)), ("attn", (17,)), ("mlp", (17,))]
    check_parts(default_model, encoded, configs, "first", batch_size=8)


def test_accelerate_hooks_survive_a_part_ablation(tiny_models, tiny_model_dirs):
    import layerscope

    plain = tiny_models["llama"]
    blocks = {f"model.layers.{i}": "disk" if i == 1 else "cpu" for i in range(plain.n_layers)}
    device_map = {
        "model.embed_tokens": "cpu",
        **blocks,
        "model.norm": "cpu",
        "model.rotary_emb": "cpu",
        "lm_head": "cpu",
    }
    hooked = layerscope.load_model(str(tiny_model_dirs["llama"]), device_map=device_map)
    before = {id(m): m.__dict__.get("forward") for layer in hooked.layers for m in layer.modules()}
    encoded = encode_task(plain, PROMPTS, ANSWERS)
    on_hooked = LayerAblation(hooked, encoded, batch_size=4, needed=[r for _, r in CONFIGS])
    on_plain = LayerAblation(plain, encoded, batch_size=4, needed=[r for _, r in CONFIGS])
    for part, removed in CONFIGS:
        got, want = on_hooked.run(removed, part), on_plain.run(removed, part)
        assert got.tokens == want.tokens and got.correct == want.correct, (part, removed)
    assert {id(m): m.__dict__.get("forward") for layer in hooked.layers for m in layer.modules()} == before
