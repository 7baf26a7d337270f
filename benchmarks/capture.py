"""Benchmark: every layer's residual stream at the last position of many prompts, on the default model.

Times, in one process with interleaved repeats (the order rotates each repeat), the same work done by:

- layerscope: ``capture_residuals`` (hooks that keep the last position only, no LM head, the last block's
  queries, attention output and MLP at the read rows only);
- layerscope-api: ``layerscope.residuals(texts, model=model)``, the notebook call (tokenization, the protocol,
  the item table);
- floor: a bare forward of the decoder stack alone, ``model.model(...)`` (no hooks, nothing kept), on
  layerscope's length-sorted batches: the whole forward that layerscope computes part of;
- hf, nnsight, transformer-lens: each as its docs show (``output_hidden_states=True``; a trace saving each
  layer's output; ``run_with_cache`` keeping ``hook_resid_post``), on batches in the order given;
- nnsight-expert: a trace that saves only each layer's last-position rows and stops after the last layer
  (``tracer.stop()``), on layerscope's sorted batches;
- transformer-lens-expert: ``run_with_cache(..., stop_at_layer=n)`` on layerscope's sorted batches.

It prints the median time per method, the ratios per repeat with their spread (``ratio ...`` lines, see
``ratios.py``), and the peak resident memory each method added. It checks that every method returns the
same vectors. Targets: layerscope <= 1.00x the floor, nnsight-expert >= 1.08x layerscope, the documented
peers >= 2.5x.

Usage (``pip install -e '.[bench]'`` for the peers; ``make bench`` runs it with the others):
    HF_HUB_OFFLINE=1 python benchmarks/capture.py --prompts 256 --repeats 5
    HF_HUB_OFFLINE=1 python benchmarks/capture.py --threads 1 --clock cpu   # on a shared machine
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

import numpy as np
import torch
from ratios import print_ratio

import layerscope
from layerscope.capture import capture_residuals, prompts_at
from layerscope.checkpoints.default import default_model_path
from layerscope.models.gguf_cache import cached_gguf_dir
from layerscope.tokensets import CATEGORIES

SUBJECTS = [w for words in CATEGORIES.values() for w in words]
FRAMES = [
    "{w}",
    "The word is {w}",
    "Here is a short sentence about {w} and what it means",
    "When people talk about {w}, they often think of something else entirely, like the weather",
    "{w} {w} {w}",
    "Question: what comes to mind with {w}? Answer:",
]


def make_prompts(n: int) -> list[str]:
    return [FRAMES[i % len(FRAMES)].format(w=SUBJECTS[(7 * i) % len(SUBJECTS)]) for i in range(n)]


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every 2 ms in a thread (bytes)."""

    def __enter__(self):
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _rss(self) -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def added(self) -> int:
        return self.peak - self.base


def batches_of(ids: list[list[int]], batch_size: int, pad_id: int, sort: bool):
    """Right-padded batches of the prompts in the order given, or sorted by length (longest first)."""
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i])) if sort else list(range(len(ids)))
    out = []
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(ids[i]) for i in chunk)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
            mask[row, : len(ids[i])] = 1
        last = torch.tensor([len(ids[i]) - 1 for i in chunk])
        out.append((chunk, input_ids, mask, last))
    return out


def collect(n_prompts: int, n_points: int, d_model: int):
    return np.zeros((n_points, n_prompts, d_model), dtype=np.float32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed seconds; cpu: this process's CPU seconds, all threads (on a shared machine, with "
        "--threads 1, the work done rather than the wait)",
    )
    parser.add_argument("--only", default=None, help="comma-separated subset of methods")
    parser.add_argument("--peers-sorted", action="store_true", help="give the peers layerscope's sorted batches")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)

    model = layerscope.load_model()
    module, n_layers, d = model.module, model.n_layers, model.d_model
    texts = make_prompts(args.prompts)
    ids = [model.encode(t) for t in texts]
    pad_id = model.tokenizer.pad_token_id or 0
    lengths = [len(i) for i in ids]
    print(
        f"{model.name}: {n_layers} layers, d_model {d}; {len(ids)} prompts of {min(lengths)}-{max(lengths)} tokens "
        f"(mean {np.mean(lengths):.1f}), batch size {args.batch_size}, {torch.get_num_threads()} threads; "
        f"peers get {'sorted' if args.peers_sorted else 'the given order in'} batches"
    )
    all_layers = list(range(n_layers + 1))

    def peer_batches(token_ids):
        return batches_of(token_ids, args.batch_size, pad_id, sort=args.peers_sorted)

    def run_layerscope(token_ids):
        return capture_residuals(model, prompts_at(token_ids, "last"), all_layers, batch_size=args.batch_size)

    text_of = {tuple(i): t for i, t in zip(ids, texts)}

    def run_layerscope_api(token_ids):
        prompts = [text_of[tuple(i)] for i in token_ids]
        return layerscope.residuals(prompts, model=model, batch_size=args.batch_size).residuals

    @torch.inference_mode()
    def run_hf(token_ids):
        out = collect(len(token_ids), n_layers + 1, d)
        for chunk, input_ids, mask, last in peer_batches(token_ids):
            hidden = module(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states
            rows = torch.arange(len(chunk))
            # HF's last entry is after the final norm; layerscope's layer n is before it: compare 0..n-1.
            out[:, chunk] = torch.stack([h[rows, last] for h in hidden]).float().numpy()
        return out

    @torch.inference_mode()
    def run_floor(token_ids):
        for _, input_ids, mask, _ in batches_of(token_ids, args.batch_size, pad_id, sort=True):
            module.model(input_ids=input_ids, attention_mask=mask, use_cache=False)
        return None

    methods = {"layerscope": run_layerscope, "layerscope-api": run_layerscope_api, "hf": run_hf, "floor": run_floor}

    try:
        from nnsight import NNsight

        traced = NNsight(module)

        @torch.inference_mode()
        def run_nnsight(token_ids):
            out = collect(len(token_ids), n_layers, d)
            for chunk, input_ids, mask, last in peer_batches(token_ids):
                saved = []  # filled inside the trace (nnsight runs the block's body itself)
                with traced.trace(input_ids=input_ids, attention_mask=mask):
                    for i in range(n_layers):
                        saved.append(traced.model.layers[i].output.save())
                rows = torch.arange(len(chunk))
                out[:, chunk] = torch.stack([(s[0] if isinstance(s, tuple) else s)[rows, last] for s in saved]).numpy()
            return out

        methods["nnsight"] = run_nnsight

        @torch.inference_mode()
        def run_nnsight_expert(token_ids):
            out = collect(len(token_ids), n_layers, d)
            for chunk, input_ids, mask, last in batches_of(token_ids, args.batch_size, pad_id, sort=True):
                rows = torch.arange(len(chunk))
                saved = []
                with traced.trace(input_ids=input_ids, attention_mask=mask) as tracer:
                    for i in range(n_layers):
                        output = traced.model.layers[i].output
                        hidden = output[0] if isinstance(output, tuple) else output
                        saved.append(hidden[rows, last].save())
                    tracer.stop()
                out[:, chunk] = torch.stack(list(saved)).numpy()
            return out

        methods["nnsight-expert"] = run_nnsight_expert
    except ImportError:
        print("nnsight is not installed: skipped (pip install -e '.[bench]')")

    try:
        from transformer_lens.model_bridge import TransformerBridge

        directory = cached_gguf_dir(default_model_path())[0]
        bridge = TransformerBridge.boot_transformers(str(directory), device="cpu", dtype=torch.float32)
        names = [f"blocks.{i}.hook_resid_post" for i in range(n_layers)]

        @torch.inference_mode()
        def run_transformer_lens(token_ids):
            out = collect(len(token_ids), n_layers, d)
            for chunk, input_ids, mask, last in peer_batches(token_ids):
                _, cache = bridge.run_with_cache(input_ids, attention_mask=mask, names_filter=names)
                rows = torch.arange(len(chunk))
                out[:, chunk] = torch.stack([cache[name][rows, last] for name in names]).float().numpy()
            return out

        methods["transformer-lens"] = run_transformer_lens

        @torch.inference_mode()
        def run_transformer_lens_expert(token_ids):
            out = collect(len(token_ids), n_layers, d)
            for chunk, input_ids, mask, last in batches_of(token_ids, args.batch_size, pad_id, sort=True):
                _, cache = bridge.run_with_cache(
                    input_ids, attention_mask=mask, names_filter=names, stop_at_layer=n_layers
                )
                rows = torch.arange(len(chunk))
                out[:, chunk] = torch.stack([cache[name][rows, last] for name in names]).float().numpy()
            return out

        methods["transformer-lens-expert"] = run_transformer_lens_expert
    except ImportError:
        print("transformer-lens is not installed: skipped (pip install -e '.[bench]')")

    if args.only:
        keep = set(args.only.split(",")) | {"layerscope"}
        methods = {k: v for k, v in methods.items() if k in keep}

    # Warm up on one batch, and check that every method returns the same vectors.
    warm = ids[: args.batch_size]
    reference = np.asarray(run_layerscope(warm))
    for name, fn in methods.items():
        result = fn(warm)
        if result is not None and name != "layerscope":
            compared = min(result.shape[0], n_layers)
            diff = np.abs(
                result[:compared] - reference[1 : compared + 1]
                if name.startswith(("nnsight", "transformer-lens"))
                else result[:compared] - reference[:compared]
            )
            scale = np.abs(reference).max(axis=(1, 2))[:compared].max()
            print(f"check {name}: max |difference| {diff.max():.3g} (residual scale {scale:.3g})")

    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    times = {name: [] for name in methods}
    peaks = {name: 0 for name in methods}
    names_order = list(methods)
    for repeat in range(args.repeats):
        order = names_order[repeat % len(names_order) :] + names_order[: repeat % len(names_order)]
        for name in order:
            with PeakRSS() as rss:
                start = clock()
                methods[name](ids)
                times[name].append(clock() - start)
            peaks[name] = max(peaks[name], rss.added)

    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"\n{args.clock} clock")
    print(f"{'method':<26}{'median s':>10}{'min s':>9}{'max s':>9}{'peak +RSS MiB':>15}")
    for name in methods:
        values = times[name]
        print(f"{name:<26}{median[name]:>10.3f}{min(values):>9.3f}{max(values):>9.3f}{peaks[name] / 2**20:>15.1f}")
    print()
    ours = times["layerscope"]
    if "floor" in times:
        print_ratio("capture: layerscope / bare decoder forward", ours, times["floor"], at_most=1.00)
    if "layerscope-api" in times:
        print_ratio("capture: layerscope.residuals / engine", times["layerscope-api"], ours)
    if "nnsight-expert" in times:
        print_ratio("capture: nnsight used expertly / layerscope", times["nnsight-expert"], ours, at_least=1.08)
    if "transformer-lens-expert" in times:
        print_ratio("capture: transformer-lens used expertly / layerscope", times["transformer-lens-expert"], ours)
    for peer in ("hf", "nnsight", "transformer-lens"):
        if peer in times:
            print_ratio(f"capture: {peer} as documented / layerscope", times[peer], ours, at_least=2.5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
