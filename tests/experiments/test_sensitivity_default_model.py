"""``sensitivity`` on the real default model (Gemma 3 270M): restored parts' KL and agreement equal those of a model
built independently (the MLX 4-bit file ``quantize`` writes, read by ``mx.load`` and ``mx.dequantize`` into a copy of
the transformers module, the reference's tensors copied in with plain torch, each prompt run alone)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

import layerscope
from layerscope.analysis.sensitivity import kl_divergence
from layerscope.capture.restoration import RestorationEngine

mx = pytest.importorskip("mlx.core")

#: prompts of different lengths (padded on the right in a batch of two; the third alone)
PROMPTS = ["The capital of France is", "3+4=7, 5+2=", "When John and Mary went to the store, John gave a drink to"]
#: the tied embedding (every block recomputed), a low block and the last block
LABELS = ("embed", "1.down_proj", "17.o_proj")


def _log_probs(module, model) -> np.ndarray:
    """``(prompt, vocab)`` float64 log-probabilities at each prompt's last token, each prompt run alone (the head
    at the last position only, transformers' ``logits_to_keep``)."""
    rows = []
    with torch.no_grad():
        for text in PROMPTS:
            logits = module(torch.tensor([model.encode(text)]), logits_to_keep=1).logits[0, -1]
            rows.append(torch.log_softmax(logits.float(), -1).double().numpy())
    return np.stack(rows)


def _read_mlx(q_dir, names) -> dict:
    """``{parameter: float32 tensor}`` of an MLX directory: matrices through ``mx.dequantize`` at its bits."""
    quantization = json.loads((q_dir / "config.json").read_text())["quantization"]
    written = mx.load(str(q_dir / "model.safetensors"))
    out = {}
    for name in names:
        module = name.removesuffix(".weight")
        value = written[name]
        if f"{module}.scales" in written:
            scales, biases = written[f"{module}.scales"], written[f"{module}.biases"]
            value = mx.dequantize(value, scales, biases, quantization["group_size"], quantization["bits"])
        out[name] = torch.from_numpy(np.array(value.astype(mx.float32)))
    return out


@pytest.mark.default_model
def test_restored_parts_equal_an_independent_model_on_the_default_model(default_model, tmp_path):
    reference = default_model
    q_dir = layerscope.quantize(None, to="mlx", bits=4, group_size=64, out=tmp_path / "q4")
    ref_params = dict(reference.module.named_parameters())
    state = {n: p.detach().clone() for n, p in ref_params.items()}
    read = _read_mlx(q_dir, list(ref_params))
    values = {n: v for n, v in read.items() if not torch.equal(v, state[n])}
    quantized = copy.deepcopy(reference.module)  # the independent model: the file's weights copied in
    q_params = dict(quantized.named_parameters())
    with torch.no_grad():
        for name, value in read.items():
            q_params[name].copy_(value)
    ref_lp = _log_probs(reference.module, reference)
    q_lp = _log_probs(quantized, reference)
    ids = [reference.encode(t) for t in PROMPTS]
    with RestorationEngine(reference, values, ids, batch_size=2) as engine:
        parts = {p.label: p for p in engine.parts}
        assert len(parts) == 1 + 7 * reference.n_layers  # every block matrix and the tied embedding
        np.testing.assert_allclose(engine.quantized_scores.kl, kl_divergence(ref_lp, q_lp), atol=2e-5)
        np.testing.assert_array_equal(engine.quantized_scores.top1, q_lp.argmax(-1))
        for label in LABELS:
            part = parts[label]
            got = engine.restore(part)
            with torch.no_grad():  # the independent model: the quantized copy with the part's tensors copied in
                for name in part.names:
                    q_params[name].copy_(state[name])
                lp = _log_probs(quantized, reference)
                for name in part.names:
                    q_params[name].copy_(values[name])
            assert not np.allclose(kl_divergence(ref_lp, lp), kl_divergence(ref_lp, q_lp), atol=1e-4), label
            # float32 rounding of a batched, padded forward against each prompt alone (KLs near 0.1 to 1)
            np.testing.assert_allclose(got.kl, kl_divergence(ref_lp, lp), atol=2e-5, err_msg=label)
            np.testing.assert_array_equal(got.top1, lp.argmax(-1), err_msg=label)
            np.testing.assert_array_equal(got.agrees, lp.argmax(-1) == ref_lp.argmax(-1), err_msg=label)
    # the session's model has its own weights back
    np.testing.assert_array_equal(_log_probs(reference.module, reference), ref_lp)
