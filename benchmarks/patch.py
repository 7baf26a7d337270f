"""Residual-stream patching on the default model: layerscope against TransformerLens 4.3 and a hand-batched
nnsight loop, one process, ratios printed (not a test).

Cells: every (layer, position) of the residual stream, denoising (clean into corrupt), logit difference of the
answer and the wrong token. Layer mapping: TransformerLens' ``resid_pre`` of layer ``k`` is layerscope's depth
``k`` (``embed`` for ``k = 0``, block ``k - 1``'s output after), so its ``resid_pre`` of layer ``k + 1`` is
layerscope's layer ``k``; its ``attn_out`` / ``mlp_out`` of layer ``k`` are layerscope's ``attn`` / ``mlp`` of block
``k``, and ``attn_head_out_all_pos`` of (layer ``k``, head ``h``) is layerscope's ``heads`` cell (``k``, every
position, ``h``) (both patch the head's slice of the output projection's input, TransformerLens' ``hook_z``).
Each tool's cells are checked against layerscope's (max absolute difference printed).

TransformerLens 4.3 has no ``HookedTransformer`` any more (``from transformer_lens import HookedTransformer``
fails); its ``TransformerBridge.boot_transformers(name, hf_model=...)`` wraps an already loaded Hugging Face
module and reads its config from it, so it boots offline (the name is only a label; without ``hf_model`` it
asks the Hub for the config). The bridge switches the module's attention to ``eager`` (for its attention
hooks), so it wraps a copy of layerscope's module, leaving layerscope's own (``sdpa``) as it was.
``patching.get_act_patch_*`` then run one whole forward per cell, full-vocabulary logits at every position.

``--check`` first compares the four functions TransformerLens' ``patching`` has for these sites
(``get_act_patch_resid_pre``, ``get_act_patch_attn_out``, ``get_act_patch_mlp_out``,
``get_act_patch_attn_head_out_all_pos``) with layerscope's cells on a tiny random Llama (3 blocks of width 64, the
default model's tokenizer) that both wrap from the same weights.

Each pair (the names pair, 15 tokens; the long pair, 64 tokens changed at position 59) prints one ``ratio`` line
per peer through ``ratios.py`` (``make bench`` collects them), against the issue's targets: layerscope at least
4x faster than TransformerLens and 1.5x the nnsight loop; ``--repeats N`` times the methods back to back N times
and the ratio line gives their spread.

Measured on a shared 2-core CPU (load average 4 to 10: noisy; one repeat; each process's first layerscope sweep
also pays its warm-up), ``--peers nnsight``: names pair layerscope 44.1 s, nnsight loop 292.5 s (6.64x); long pair
18.6 s against 876.2 s (47.2x); max |diff| 2.5e-5. ``--pairs names --peers tl``: layerscope 32.0 s,
TransformerLens 4.3 925.7 s (28.95x), max |diff| 2.1e-5 (eager against sdpa attention). The long pair's
TransformerLens sweep (1152 whole forwards, full-vocabulary logits at 64 positions each) was not run on that
machine. ``--check`` (earlier, load average 13 to 17): the four functions equal layerscope's cells within 2.1e-7
(cells up to 0.37).

Run in an environment with the peers (``make bench`` installs the bench extra into ``.venv-bench``):

    .venv-bench/bin/python benchmarks/patch.py [--check] [--pairs names,long] [--peers nnsight,tl] [--repeats N]
"""

from __future__ import annotations

import argparse
import copy
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import torch

import layerscope
from layerscope.capture.patching import Cell, PairIds, PatchEngine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ratios import print_ratio  # noqa: E402

LABELS = {"layerscope": "layerscope", "nnsight": "nnsight loop", "tl": "TransformerLens 4.3"}
#: the issue's targets: layerscope's residual sweep at least this many times faster than each peer
TARGETS = {"nnsight": 1.5, "tl": 4.0}

NAMES = (
    "When Mary and John went to the store, John gave a drink to",
    "When Mary and John went to the store, Mary gave a drink to",
)
LONG_HEAD = (
    "The museum opened its new wing on a rainy morning, and the guides walked the first visitors through rooms "
    "of maps, coins and letters. Outside, the rain had stopped, and the street was full of light. At the end of "
    "the tour, "
)  # 64 tokens with the default model's tokenizer, the change at position 59
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


def transformer_lens_bridge(model):
    """TransformerLens 4.3's bridge around a copy of ``model``'s Hugging Face module (see the module docstring)."""
    from transformer_lens import TransformerBridge

    return TransformerBridge.boot_transformers(
        model.name, hf_model=copy.deepcopy(model.module), tokenizer=model.tokenizer, device="cpu", dtype=torch.float32
    )


def transformer_lens_runs(tl, pair: PairIds) -> dict:
    """``{site: run}``: each of TransformerLens' patching functions for ``pair``, ready to time."""
    from transformer_lens import patching

    clean, corrupt = torch.tensor([pair.clean]), torch.tensor([pair.corrupt])
    _, cache = tl.run_with_cache(clean)

    def metric(logits):
        return logits[0, -1, pair.answer] - logits[0, -1, pair.wrong]

    def run(function):
        def call():
            with torch.inference_mode():
                return function(tl, corrupt, cache, metric)

        return call

    return {
        "resid": run(patching.get_act_patch_resid_pre),
        "attn": run(patching.get_act_patch_attn_out),
        "mlp": run(patching.get_act_patch_mlp_out),
        "heads": run(patching.get_act_patch_attn_head_out_all_pos),
    }


def layerscope_sites(model, pair: PairIds) -> dict:
    """``{site: (layers, positions or heads)}`` of layerscope's cells in TransformerLens' layout."""
    engine = PatchEngine(model, pair, batch_size=256)
    n, t = model.n_layers, pair.length
    out = {}
    for part in ("resid", "attn", "mlp"):
        scores = engine.run_cells([Cell(part, k, p) for k in range(n) for p in range(t)])
        out[part] = (scores[:, 0] - scores[:, 1]).reshape(n, t)
    scores = engine.run_cells([Cell("heads", k, None, h) for k in range(n) for h in range(engine.n_heads)])
    out["heads"] = (scores[:, 0] - scores[:, 1]).reshape(n, engine.n_heads)
    return out


def check_tiny(model, pair: PairIds) -> None:
    """The four patching functions of TransformerLens against layerscope on a tiny random Llama."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from layerscope.models.model import Model

    config = LlamaConfig(
        vocab_size=len(model.tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
        bos_token_id=model.tokenizer.bos_token_id, tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(0)
    module = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    tiny = Model(module, model.tokenizer, "tiny-llama", "tiny-llama", "tiny-llama")
    ours = layerscope_sites(tiny, pair)
    tl = transformer_lens_bridge(tiny)
    print(
        f"tiny random Llama ({tiny.n_layers} blocks, width 64), {pair.length} tokens: TransformerLens 4.3 - layerscope"
    )
    for site, run in transformer_lens_runs(tl, pair).items():
        theirs = run()
        scale = float(ours[site].abs().max())
        print(
            f"  {site:6s} {tuple(theirs.shape)}  max |diff| {float((theirs - ours[site]).abs().max()):.2e}"
            f"  (cells up to {scale:.3g})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare TransformerLens' four functions on a tiny Llama")
    parser.add_argument("--pairs", default="names,long", help="names, long or both (default)")
    parser.add_argument("--peers", default="nnsight,tl", help="nnsight, tl or both (default)")
    parser.add_argument("--repeats", type=int, default=1, help="timings per method and pair (default 1)")
    args = parser.parse_args()
    model = layerscope.load_model()
    (a,), (w,) = model.encode(" Mary", bos=False), model.encode(" John", bos=False)
    pairs = {"names": ("names pair", NAMES), "long": ("long pair", LONG)}
    if args.check:
        check_tiny(model, PairIds(tuple(model.encode(NAMES[0])), tuple(model.encode(NAMES[1])), a, w))
    lm, nn_error, tl, tl_error = None, None, None, None
    if "nnsight" in args.peers:
        try:
            from nnsight import LanguageModel

            lm = LanguageModel(model.module, tokenizer=model.tokenizer)
        except Exception as exc:  # noqa: BLE001 - a peer that cannot run is reported, not fatal
            nn_error = exc
    if "tl" in args.peers:
        try:
            tl = transformer_lens_bridge(model)
        except Exception as exc:  # noqa: BLE001
            tl_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    for key in args.pairs.split(","):
        name, (clean, corrupt) = pairs[key]
        pair = PairIds(tuple(model.encode(clean)), tuple(model.encode(corrupt)), a, w)
        print(
            f"\n{name}: {pair.length} tokens, first change at {pair.changed[0]}, {model.n_layers} x {pair.length} cells"
        )
        runs = {"layerscope": lambda pair=pair: layerscope_cells(model, pair)}
        if lm is not None:
            runs["nnsight"] = lambda pair=pair: nnsight_cells(lm, model, pair)
        elif "nnsight" in args.peers:
            print(f"  nnsight loop          unavailable: {nn_error}")
        if tl is not None:
            runs["tl"] = transformer_lens_runs(tl, pair)["resid"]
        elif "tl" in args.peers:
            print(f"  TransformerLens 4.3   unavailable: {tl_error}")
        times = {method: [] for method in runs}
        for repeat in range(args.repeats):  # the methods back to back within each repeat (ratios.py)
            cells = {}
            for method, run in runs.items():
                took, cells[method], peak = timed(run)
                times[method].append(took)
                differs = (
                    ""
                    if method == "layerscope"
                    else f"   max |diff| {float((cells[method] - cells['layerscope']).abs().max()):.2e}"
                )
                print(f"  {LABELS[method]:22s}{took:7.2f} s   peak Python allocations {peak / 2**20:7.1f} MiB{differs}")
        for method in runs:
            if method != "layerscope":
                print_ratio(
                    f"patch {name} ({pair.length} tokens): {LABELS[method]} / layerscope",
                    times[method],
                    times["layerscope"],
                    at_least=TARGETS[method],
                )
    print(f"\nprocess max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")


if __name__ == "__main__":
    main()
