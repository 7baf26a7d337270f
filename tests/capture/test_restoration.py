"""The restoration engine on a model whose blocks hand the next one a state beside the residual stream (Zaya's
router state): each restored part, and each restored block output, equals the model run whole with those weights
or that output (plain torch, each prompt alone)."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import layerscope
from layerscope.capture.restoration import RestorationEngine

_SPEC = importlib.util.spec_from_file_location(
    "architectures", Path(__file__).parents[2] / "benchmarks" / "architectures.py"
)
matrix = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(matrix)

PROMPTS = ["When John and Mary went", "5+2=", "The word is red"]


@pytest.fixture(scope="module")
def zaya(tmp_path_factory):
    root = tmp_path_factory.mktemp("restoration")
    matrix.build_tokenizer(root / "tokenizer")
    matrix.build_model("zaya", root / "zaya", root / "tokenizer")
    return layerscope.load_model(str(root / "zaya"))


def _log_probs(module, ids) -> np.ndarray:
    with torch.no_grad():
        rows = [torch.log_softmax(module(torch.tensor([seq])).logits[0, -1].float(), -1) for seq in ids]
    return torch.stack(rows).double().numpy()


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return (np.exp(p) * (p - q)).sum(-1).clip(min=0)


def test_restoring_parts_of_a_block_that_reads_the_previous_blocks_router_state(zaya):
    ids = [zaya.encode(t) for t in PROMPTS]
    torch.manual_seed(1)
    state = {n: p.detach().clone() for n, p in zaya.module.named_parameters()}  # the engine swaps the tensors
    changed = {n: p + 0.05 * torch.randn_like(p) for n, p in state.items() if n.startswith("model.layers.")}
    reference = _log_probs(zaya.module, ids)
    independent = copy.deepcopy(zaya.module)
    own = dict(independent.named_parameters())
    with RestorationEngine(zaya, changed, ids, batch_size=3) as engine:
        parts = [p for p in engine.parts if p.label in ("1.q_proj", "1.down_proj", "2.out_proj")]
        assert len(parts) == 3  # attention and experts of block 1, the router's output of block 2
        for part in parts:
            with torch.no_grad():
                for name, value in changed.items():
                    own[name].copy_(state[name] if name in part.names else value)
            want = _kl(reference, _log_probs(independent, ids))
            np.testing.assert_allclose(engine.restore(part).kl, want, atol=2e-6, err_msg=part.label)
