"""Every patched cell against a plain Hugging Face forward whose hook (written in tests/patch_oracle.py, not
through layerscope's engine) overwrites that one activation, on each tiny architecture."""

from __future__ import annotations

import pytest
import torch
from patch_oracle import CLEAN, CORRUPT, patched_logits, plain_logits, rounded_copy

from layerscope.capture.patching import Cell, PairIds, PatchEngine
from layerscope.errors import LayerscopeError


def _pair(model, clean=CLEAN, corrupt=CORRUPT) -> PairIds:
    (answer,), (wrong,) = model.encode(" Mary", bos=False), model.encode(" John", bos=False)
    return PairIds(tuple(model.encode(clean)), tuple(model.encode(corrupt)), answer, wrong)


def _close(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).abs().max() / want.abs().max())


def _sample(engine, length: int) -> list[Cell]:
    """A spread of cells: before, at and after the changed position; first, middle and last layers."""
    f = engine.pair.changed[0]
    n = engine.n_layers
    cells = [Cell("resid", d, p) for d in (0, n) for p in (1, f, length - 1)]
    cells += [Cell(part, k, p) for part in ("attn", "mlp") for k in (0, n - 1) for p in (f, length - 1)]
    cells += [Cell("heads", 1, None, 0), Cell("heads", 1, f, engine.n_heads - 1)]
    return cells


def test_every_cell_equals_a_hooked_forward(tiny):
    _check_cells(tiny, "denoise")


def test_noising_equals_a_hooked_forward(tiny_models):
    _check_cells(tiny_models["gemma3"], "noise")


def _check_cells(tiny, direction: str) -> None:
    pair = _pair(tiny)
    engine = PatchEngine(tiny, pair, full_vocab=True, batch_size=5)
    assert engine.first == pair.changed[0] > 0  # the shared prefix ran once, with its cache
    assert _close(engine.clean.scores, plain_logits(tiny, list(pair.clean))) < 1e-4
    assert _close(engine.corrupt.scores, plain_logits(tiny, list(pair.corrupt))) < 1e-4
    cells = _sample(engine, pair.length)
    got = engine.run_cells(cells, direction)
    base, source = (pair.corrupt, pair.clean) if direction == "denoise" else (pair.clean, pair.corrupt)
    head_dim = engine._heads[1]
    for row, cell in zip(got, cells):
        want = patched_logits(tiny, list(base), list(source), cell.part, cell.layer, cell.position, cell.head, head_dim)
        assert _close(row, want) < 1e-4, cell


def test_two_columns_equal_the_full_vocabulary(tiny_models):
    model = tiny_models["gemma2"]  # a soft-capped head: the cap applies to the two columns too
    pair = _pair(model)
    narrow = PatchEngine(model, pair, parts=("resid",), batch_size=64)
    full = PatchEngine(model, pair, parts=("resid",), full_vocab=True)
    cells = [Cell("resid", d, p) for d in range(model.n_layers + 1) for p in range(pair.length)]
    got, want = narrow.run_cells(cells), full.run_cells(cells)[:, [pair.answer, pair.wrong]]
    assert got.shape == (len(cells), 2)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_cells_before_the_change_are_the_base_run_without_running(tiny_models):
    model = tiny_models["llama"]
    engine = PatchEngine(model, _pair(model), parts=("resid",))
    calls = []
    handle = model.layers[0].register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        got = engine.run_cells([Cell("resid", d, 0) for d in range(model.n_layers + 1)], "denoise")
    finally:
        handle.remove()
    assert calls == []
    assert torch.equal(got, engine.corrupt.scores.expand_as(got))


def test_the_first_position_changed_runs_without_a_cache(tiny_models):
    model = tiny_models["qwen3"]
    a, b = model.encode("red", bos=False), model.encode("blue", bos=False)
    pair = PairIds(tuple(a[:1] + a[:1]), tuple(b[:1] + a[:1]), 5, 6)
    engine = PatchEngine(model, pair, full_vocab=True)
    assert engine.first == 0
    got = engine.run_cells([Cell("resid", 1, 0)])[0]
    torch.testing.assert_close(got, patched_logits(model, list(pair.corrupt), list(pair.clean), "resid", 1, 0))


def test_bad_pairs_are_refused(tiny_models):
    model = tiny_models["llama"]
    with pytest.raises(LayerscopeError, match="same tokens"):
        PatchEngine(model, PairIds((2, 5), (2, 5), 1, 3))
    with pytest.raises(LayerscopeError, match="different token lengths"):
        PatchEngine(model, PairIds((2, 5), (2, 5, 6), 1, 3))
    with pytest.raises(LayerscopeError, match="unknown part 'neurons'"):
        PatchEngine(model, PairIds((2, 5), (2, 6), 1, 3), parts=("neurons",))


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
@pytest.mark.parametrize("direction", ["denoise", "noise"])
def test_a_source_model_cell_equals_a_hooked_forward(tiny_models, arch, direction):
    """The source run is another model's (a 4-bit rounded copy): its activation overwrites the model's own."""
    model = tiny_models[arch]
    source = rounded_copy(model)
    pair = _pair(model)
    engine = PatchEngine(model, pair, full_vocab=True, batch_size=4, source_model=source)
    assert engine.first == 0  # no activation is shared between two models
    assert _close(engine.source_clean.scores, plain_logits(source, list(pair.clean))) < 1e-4
    assert _close(engine.corrupt.scores, plain_logits(model, list(pair.corrupt))) < 1e-4
    n, f = model.n_layers, pair.changed[0]
    cells = [Cell("resid", d, p) for d in (0, 1, n) for p in (1, f, pair.length - 1)]
    cells += [Cell(part, k, p) for part in ("attn", "mlp") for k in (0, n - 1) for p in (1, None)]
    cells += [Cell("heads", 1, None, 0), Cell("heads", 2, f, 3), Cell("resid", 2, None)]
    got = engine.run_cells(cells, direction)
    base, src = (pair.corrupt, pair.clean) if direction == "denoise" else (pair.clean, pair.corrupt)
    for row, cell in zip(got, cells):
        want = patched_logits(
            model, list(base), list(src), cell.part, cell.layer, cell.position, cell.head, 16, source_model=source
        )
        assert _close(row, want) < 1e-4, cell
    clean, corrupt = engine.ends(direction)
    assert (clean, corrupt) == (
        (engine.source_clean, engine.corrupt) if direction == "denoise" else (engine.clean, engine.source_corrupt)
    )


def test_a_source_model_of_another_shape_or_tokenizer_is_refused(tiny_models):
    import copy

    from transformers import AutoModelForCausalLM, LlamaConfig

    from layerscope.models.model import Model

    model = tiny_models["llama"]
    pair = _pair(model)
    shallow = copy.deepcopy(model.module)
    shallow.model.layers = shallow.model.layers[:2]
    shallow.config.num_hidden_layers = 2
    config = LlamaConfig(**{**model.config.to_dict(), "hidden_size": 32, "head_dim": 8})
    narrow = AutoModelForCausalLM.from_config(config)
    tokenizer = copy.deepcopy(model.tokenizer)
    tokenizer.add_tokens(["<extra-token>"])
    cases = [
        (Model(shallow, model.tokenizer, "s", "s", "shallow"), r"differ in depth \(2 and 3\)"),
        (Model(narrow, model.tokenizer, "n", "n", "narrow"), r"differ in hidden size \(32 and 64\)"),
        (Model(copy.deepcopy(model.module), tokenizer, "t", "t", "retok"), "different tokenizers"),
    ]
    for source, message in cases:
        with pytest.raises(LayerscopeError, match=f"source model '{source.name}' and model 'llama'.*{message}"):
            PatchEngine(model, pair, source_model=source)
