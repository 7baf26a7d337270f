"""``memory``: what a model's task asks Ray for, from its checkpoint's headers alone."""

from __future__ import annotations

from layerscope.experiments.sweep.memory import RUNTIME_OVERHEAD, model_memory, needs_gpu
from layerscope.model_spec import ModelSpec


def test_memory_from_the_headers(tiny_model_dirs):
    default_bytes = model_memory(ModelSpec())  # the GGUF's parameters as float32, plus the runtime
    assert 268_000_000 * 4 < default_bytes < 268_000_000 * 4 + (2 << 30)
    assert model_memory(ModelSpec("/no/such/model")) == RUNTIME_OVERHEAD == 1 << 30
    assert model_memory(ModelSpec(str(tiny_model_dirs["llama"]))) > RUNTIME_OVERHEAD


def test_a_gpu_only_for_a_device_map_off_the_cpu():
    assert not needs_gpu(ModelSpec()) and not needs_gpu(ModelSpec("x", device_map="cpu"))
    assert needs_gpu(ModelSpec("x", device_map="auto"))
