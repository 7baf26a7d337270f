"""Residual-stream patching on the default model: layerscope against TransformerLens 4.3 and a hand-batched
nnsight loop, one process, ratios printed (not a test).

Cells: every (layer, position) of the residual stream, denoising (clean into corrupt), logit difference of the
answer and the wrong token. Layer mapping: TransformerLens' ``resid_pre`` of layer ``k`` is layerscope's depth
``k`` (``embed`` for ``k = 0``, block ``k - 1``'s output after), so its ``resid_pre`` of layer ``k + 1`` is
layerscope's layer ``k``. Each tool's cells are checked against layerscope's (max absolute difference printed).

Run in an environment with the peers (never the project's shared one):

    python3 -m venv /work/venv-bench
    /work/venv-bench/bin/pip install torch==2.13.0 transformer-lens==4.3.0 nnsight -e . torch==2.13.0
    /work/venv-bench/bin/python benchmarks/patch.py
"""

from __future__ import annotations

import resource
import time
import tracemalloc

import torch

import layerscope
from layerscope.capture.patching import Cell, PairIds, PatchEngine

NAMES = (
    "When Mary and John went to the store, John gave a drink to",
    "When Mary and John went to the store, Mary gave a drink to",
)
LONG_HEAD = (
    "The museum opened its new wing on a rainy morning, and the guides walked the first visitors through rooms "
    "of maps, coins and letters. At the end of the tour, "
)
LONG = (
    LONG_HEAD + "John and Mary met at the door, and John handed the keys to",
    LONG_HEAD + "John and Mary met at the door, and Mary handed the keys to",
)


def timed(fn, repeats: int = 1):
    """Best wall time of ``repeats`` calls, the result of the last, and the peak of Python allocations."""
    best, out = float("inf"), None
    tracemalloc.start()
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return best, out, peak


def layerscope_cells(model, pair: PairIds) -> torch.Tensor:
    """``(n_layers, T)``: depths 0..n-1 (TransformerLens' resid_pre 0..n-1)."""
    engine = PatchEngine(model, pair, parts=("resid",), batch_size=256)
    n, t = model.n_layers, pair.length
    cells = [Cell("resid", d, p) for d in range(n) for p in range(t)]
    scores = engine.run_cells(cells)
    return (scores[:, 0] - scores[:, 1]).reshape(n, t)


def _record(lm, ids: torch.Tensor, k: int) -> torch.Tensor:
    with lm.trace(ids):
        saved = (lm.model.embed_tokens.output if k == 0 else lm.model.layers[k - 1].output).save()
    return saved


def _patched(lm, ids: torch.Tensor, k: int, value: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    with lm.trace(ids):
        site = lm.model.embed_tokens.output if k == 0 else lm.model.layers[k - 1].output
        site[rows, rows] = value
        logits = lm.lm_head.output[:, -1].save()
    return logits


def nnsight_cells(lm, model, pair: PairIds) -> torch.Tensor:
    """The loop an nnsight user writes: record the clean run, then one batch per layer (a row per position)."""
    n, t = model.n_layers, pair.length
    clean, corrupt = torch.tensor([pair.clean]), torch.tensor([pair.corrupt])
    rows = torch.arange(t)
    out = torch.empty(n, t)
    with torch.inference_mode():
        for k in range(n):
            value = _record(lm, clean, k)[0, rows]
            logits = _patched(lm, corrupt.expand(t, -1), k, value, rows)
            out[k] = logits[:, pair.answer] - logits[:, pair.wrong]
    return out


def transformer_lens_cells(model, pair: PairIds) -> torch.Tensor:
    from transformer_lens import HookedTransformer, patching

    tl = HookedTransformer.from_pretrained_no_processing(
        "google/gemma-3-270m", hf_model=model.module, tokenizer=model.tokenizer, device="cpu", dtype=torch.float32
    )
    clean, corrupt = torch.tensor([pair.clean]), torch.tensor([pair.corrupt])
    _, cache = tl.run_with_cache(clean)

    def metric(logits):
        return logits[0, -1, pair.answer] - logits[0, -1, pair.wrong]

    def run():
        with torch.inference_mode():
            return patching.get_act_patch_resid_pre(tl, corrupt, cache, metric)

    return run


def main() -> None:
    model = layerscope.load_model()
    (a,), (w,) = model.encode(" Mary", bos=False), model.encode(" John", bos=False)
    try:
        from nnsight import LanguageModel

        lm = LanguageModel(model.module, tokenizer=model.tokenizer)
    except Exception as exc:  # noqa: BLE001 - a peer that cannot run is reported, not fatal
        lm, nn_error = None, exc
    for name, (clean, corrupt) in (("names pair", NAMES), ("64-token pair", LONG)):
        pair = PairIds(tuple(model.encode(clean)), tuple(model.encode(corrupt)), a, w)
        print(
            f"\n{name}: {pair.length} tokens, first change at {pair.changed[0]}, {model.n_layers} x {pair.length} cells"
        )
        ours, want, peak = timed(lambda: layerscope_cells(model, pair))
        print(f"  layerscope            {ours:7.2f} s   peak Python allocations {peak / 2**20:7.1f} MiB")
        if lm is not None:
            took, got, peak = timed(lambda: nnsight_cells(lm, model, pair))
            print(
                f"  nnsight loop          {took:7.2f} s   peak {peak / 2**20:7.1f} MiB   ratio {took / ours:5.2f}x   "
                f"max |diff| {float((got - want).abs().max()):.2e}"
            )
        else:
            print(f"  nnsight loop          unavailable: {nn_error}")
        try:
            run = transformer_lens_cells(model, pair)
            took, got, peak = timed(run, repeats=1)
            print(
                f"  TransformerLens 4.3   {took:7.2f} s   peak {peak / 2**20:7.1f} MiB   ratio {took / ours:5.2f}x   "
                f"max |diff| {float((got - want).abs().max()):.2e}"
            )
        except Exception as exc:  # noqa: BLE001
            print(f"  TransformerLens 4.3   unavailable: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
    print(f"\nprocess max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")


if __name__ == "__main__":
    main()
