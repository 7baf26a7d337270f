"""Benchmark: layer-ablation sweep (every layer removed in turn, plus the baseline) on arithmetic prompts.

Times, in one process and on the same prompts and batches:

* layerscope (``run_ablate``: cached prefix, scored position only);
* the seed's naive loop: for each configuration the model is rebuilt without the layer, then a full
  forward with logits at every position;
* a better naive loop: the same, keeping the last position's logits only (``logits_to_keep=1``).

layerscope runs a repeated prompt once (the seed's 1000 single-digit prompts hold about 280 distinct
ones); ``--distinct`` draws without repeats to measure the engine alone. It prints the times, the ratios, and checks that all three give identical accuracies and predictions.

``--task NAME`` runs a built-in task instead (``--n`` distinct prompts, e.g. 1000 of ``copying``), with the
task's default scoring, against the naive last-logit loop generalized to whole answers: for each
configuration the rebuilt model decodes greedily, one full forward per new token (no KV cache), as many
tokens as the longest answer; an item is right when its first ``len(answer)`` tokens are the answer.

``--parts`` times the attention/MLP sweep instead (each block's attention removed, then each block's MLP:
36 configurations on the default model's 18 blocks, plus the baseline): layerscope (``--part attn,mlp``)
against the naive loop, a fresh forward of the whole model per configuration with that block's
``self_attn`` / ``mlp`` forward patched to return zeros, keeping the last position's logits only.

    PYTHONPATH=src python benchmarks/ablate.py            # default model, 1000 prompts
    PYTHONPATH=src python benchmarks/ablate.py --n 200    # a quicker run
    PYTHONPATH=src python benchmarks/ablate.py --task copying --n 1000   # 1000 distinct prompts of a built-in task
    PYTHONPATH=src python benchmarks/ablate.py --parts    # the 36-configuration attention/MLP sweep
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

from ratios import print_ratio  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from torch import nn  # noqa: E402

import layerscope  # noqa: E402
from layerscope import progress  # noqa: E402
from layerscope.capture.ablation import encode_task  # noqa: E402
from layerscope.experiments.ablate import AblateConfig, run_ablate  # noqa: E402
from layerscope.tasks import arithmetic_task  # noqa: E402


@contextlib.contextmanager
def rebuilt_without(model, removed: int | None):
    """The model with decoder layer ``removed`` deleted from its layer list (and from ``config.layer_types``)."""
    parent_path, _, name = model.parts.layers_path.rpartition(".")
    parent = model.module.get_submodule(parent_path) if parent_path else model.module
    layers, config = getattr(parent, name), parent.config
    saved = (config.num_hidden_layers, getattr(config, "layer_types", None))
    keep = [i for i in range(len(layers)) if i != removed]
    try:
        setattr(parent, name, nn.ModuleList([layers[i] for i in keep]))
        config.num_hidden_layers = len(keep)
        if isinstance(saved[1], list):
            config.layer_types = [saved[1][i] for i in keep]
        yield model.module
    finally:
        setattr(parent, name, layers)
        config.num_hidden_layers, config.layer_types = saved[0], saved[1]


def padded_batches(prompt_ids: list[list[int]], batch_size: int, pad: int):
    """Left-padded batches ``(items, input_ids, attention_mask, position_ids)``, prompts sorted by length."""
    order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]))
    for start in range(0, len(order), batch_size):
        items = order[start : start + batch_size]
        width = max(len(prompt_ids[i]) for i in items)
        ids = torch.full((len(items), width), pad)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, i in enumerate(items):
            ids[row, width - len(prompt_ids[i]) :] = torch.tensor(prompt_ids[i])
            mask[row, width - len(prompt_ids[i]) :] = 1
        yield items, ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


@torch.inference_mode()
def naive_sweep(model, encoded, batch_size: int, logits_to_keep: int) -> dict:
    """``{config: predicted first-token ids}`` for the baseline and each layer removed, the plain way."""
    pad = model.tokenizer.pad_token_id or 0
    batches = list(padded_batches(encoded.prompt_ids, batch_size, pad))
    results = {}
    for removed in progress.track([None, *range(model.n_layers)], "naive", total=model.n_layers + 1):
        predicted = [0] * len(encoded.prompt_ids)
        with rebuilt_without(model, removed) as module:
            for items, ids, mask, positions in batches:
                logits = module(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=positions,
                    use_cache=False,
                    logits_to_keep=logits_to_keep,
                ).logits  # (batch, pos or 1, vocab)
                for row, i in enumerate(items):
                    predicted[i] = int(logits[row, -1].argmax())
        results["baseline" if removed is None else f"drop {removed}"] = predicted
    return results


@torch.inference_mode()
def naive_greedy_sweep(model, encoded, batch_size: int) -> dict:
    """``{config: per-item verdict}``: greedy decoding of as many tokens as the longest answer, each new token
    from a full forward of the rebuilt model keeping the last logits only."""
    pad = model.tokenizer.pad_token_id or 0
    steps = max(len(a) for a in encoded.answer_ids)
    results = {}
    for removed in progress.track([None, *range(model.n_layers)], "naive", total=model.n_layers + 1):
        sequences = [list(p) for p in encoded.prompt_ids]
        with rebuilt_without(model, removed) as module:
            for _ in range(steps):
                for items, ids, mask, positions in padded_batches(sequences, batch_size, pad):
                    logits = module(
                        input_ids=ids,
                        attention_mask=mask,
                        position_ids=positions,
                        use_cache=False,
                        logits_to_keep=1,
                    ).logits
                    for row, i in enumerate(items):
                        sequences[i].append(int(logits[row, -1].argmax()))
        results["baseline" if removed is None else f"drop {removed}"] = [
            seq[len(p) : len(p) + len(a)] == a for seq, p, a in zip(sequences, encoded.prompt_ids, encoded.answer_ids)
        ]
    return results


def task_benchmark(model, args) -> None:
    """A built-in task's ``--n`` distinct prompts: layerscope against the naive greedy last-logit loop."""
    from layerscope.tasks.registry import builtin_task

    task = builtin_task(args.task).task(n=args.n)
    encoded = encode_task(model, [i.prompt for i in task.items], [i.answer for i in task.items])
    distinct = len({tuple(p) for p in encoded.prompt_ids})
    with torch.inference_mode():
        model.module(input_ids=torch.tensor([encoded.prompt_ids[0]] * args.batch_size), logits_to_keep=0)
    start = time.perf_counter()
    result = run_ablate(AblateConfig(task=args.task, n=args.n, batch_size=args.batch_size), model)
    fast = time.perf_counter() - start
    ours = {config: group["correct"].tolist() for config, group in result.examples.groupby("config", sort=False)}
    start = time.perf_counter()
    naive = naive_greedy_sweep(model, encoded, args.batch_size)
    naive_time = time.perf_counter() - start
    identical = list(ours) == list(naive) and all(ours[c] == naive[c] for c in naive)
    longest = max(len(a) for a in encoded.answer_ids)
    print(
        f"model {model.name}, task {args.task}: {len(task)} prompts ({distinct} distinct), {result.scoring} scoring "
        f"(answers up to {longest} tokens), {model.n_layers} layers + baseline, batch {args.batch_size}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"layerscope                 {fast:8.1f} s")
    print(f"naive greedy last-logit    {naive_time:8.1f} s   ratio {naive_time / fast:.2f}x")
    print(f"identical verdicts (item by item, every configuration): {identical}")
    print("accuracy:", ", ".join(f"{c} {sum(v) / len(v):.3f}" for c, v in ours.items()))


@contextlib.contextmanager
def zeroed(model, part: str, block: int):
    """The model with ``layers[block].<part>`` (``self_attn`` or ``mlp``) returning zeros shaped as its input."""
    module = getattr(model.layers[block], part)
    # Hugging Face attention returns (output, weights); an MLP a tensor, gpt-oss's MoE (output, router scores).
    as_tuple = part == "self_attn" or model.module.config.model_type == "gpt_oss"

    def zeros(*args, **kwargs):
        out = torch.zeros_like(args[0] if args else kwargs["hidden_states"])
        return (out, None) if as_tuple else out

    module.forward = zeros
    try:
        yield model.module
    finally:
        del module.forward


@torch.inference_mode()
def naive_part_sweep(model, encoded, batch_size: int) -> dict:
    """``{config: predicted first-token ids}`` for the baseline and each block's attention, then MLP, zeroed."""
    pad = model.tokenizer.pad_token_id or 0
    batches = list(padded_batches(encoded.prompt_ids, batch_size, pad))
    configs = [(None, None)] + [(part, k) for part in ("attn", "mlp") for k in range(model.n_layers)]
    results = {}
    for part, k in progress.track(configs, "naive", total=len(configs)):
        predicted = [0] * len(encoded.prompt_ids)
        patch = contextlib.nullcontext() if part is None else zeroed(model, {"attn": "self_attn"}.get(part, part), k)
        with patch:
            for items, ids, mask, positions in batches:
                logits = model.module(
                    input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False, logits_to_keep=1
                ).logits  # (batch, 1, vocab)
                for row, i in enumerate(items):
                    predicted[i] = int(logits[row, -1].argmax())
        results["baseline" if part is None else f"drop {part} {k}"] = predicted
    return results


def parts_main(args, model, encoded, repeats: bool) -> None:
    """The attention/MLP sweep: layerscope against the naive loop, verdicts compared item by item."""
    start, cpu = time.perf_counter(), time.process_time()
    config = AblateConfig(
        n=args.n, duplicates=repeats, batch_size=args.batch_size, part=("attn", "mlp"), scoring="first"
    )
    result = run_ablate(config, model)
    fast, fast_cpu = time.perf_counter() - start, time.process_time() - cpu
    ours = {config: group["correct"].tolist() for config, group in result.examples.groupby("config", sort=False)}
    start, cpu = time.perf_counter(), time.process_time()
    naive = verdicts(naive_part_sweep(model, encoded, args.batch_size), encoded)
    naive_time, naive_cpu = time.perf_counter() - start, time.process_time() - cpu
    identical = list(ours) == list(naive) and all(ours[c] == naive[c] for c in naive)
    distinct = len({tuple(p) for p in encoded.prompt_ids})
    print(
        f"model {model.name}, {args.n} prompts ({distinct} distinct), {len(ours) - 1} attn/mlp configurations + "
        f"baseline, batch {args.batch_size}, {torch.get_num_threads()} threads"
    )
    # CPU seconds of this process too: on a shared machine they vary less than the wall clock.
    print(f"layerscope (--part attn,mlp)  {fast:8.1f} s  ({fast_cpu:.1f} CPU s)")
    print(
        f"naive loop (zeroed, last)     {naive_time:8.1f} s  ({naive_cpu:.1f} CPU s)   ratio {naive_time / fast:.2f}x "
        f"(CPU {naive_cpu / fast_cpu:.2f}x)"
    )
    print(f"identical verdicts (item by item, every configuration): {identical}")
    print("accuracy:", ", ".join(f"{c} {sum(v) / len(v):.3f}" for c, v in ours.items()))


def verdicts(predictions: dict, encoded) -> dict:
    """``{config: per-item correct}`` (the first answer token against the prediction)."""
    targets = [a[0] for a in encoded.answer_ids]
    return {c: [p == t for p, t in zip(ids, targets)] for c, ids in predictions.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--distinct",
        action="store_true",
        help="no repeated prompts (the default draws with repeats, like the seed's 1000 prompts)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--task", default=None, help="a built-in task instead of the seed's arithmetic")
    parser.add_argument("--parts", action="store_true", help="time the attention/MLP sweep instead of the blocks")
    args = parser.parse_args()
    if args.task is not None and args.parts:
        parser.error("--task and --parts are separate benchmarks; give one")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = layerscope.load_model(args.model)
    if args.task is not None:
        task_benchmark(model, args)
        return
    repeats = not args.distinct
    task = arithmetic_task(args.n, duplicates=repeats, seed=0)
    encoded = encode_task(model, [i.prompt for i in task.items], [i.answer for i in task.items])
    with torch.inference_mode():  # warm up (allocator, kernels) so that no contender pays for it
        model.module(input_ids=torch.tensor([encoded.prompt_ids[0]] * args.batch_size), logits_to_keep=0)
    if args.parts:
        parts_main(args, model, encoded, repeats)
        return

    start = time.perf_counter()
    config = AblateConfig(n=args.n, duplicates=repeats, batch_size=args.batch_size, scoring="first")
    result = run_ablate(config, model)
    fast = time.perf_counter() - start
    ours = {config: group["correct"].tolist() for config, group in result.examples.groupby("config", sort=False)}

    start = time.perf_counter()
    seed_loop = naive_sweep(model, encoded, args.batch_size, logits_to_keep=0)
    seed_time = time.perf_counter() - start
    start = time.perf_counter()
    better_loop = naive_sweep(model, encoded, args.batch_size, logits_to_keep=1)
    better_time = time.perf_counter() - start

    same_predictions = seed_loop == better_loop
    seed_ok, better_ok = verdicts(seed_loop, encoded), verdicts(better_loop, encoded)
    identical = list(ours) == list(seed_ok) and all(ours[c] == seed_ok[c] == better_ok[c] for c in seed_ok)
    distinct = len({tuple(p) for p in encoded.prompt_ids})
    print(
        f"model {model.name}, {args.n} prompts ({distinct} distinct), {model.n_layers} layers + baseline, batch {args.batch_size}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"layerscope           {fast:8.1f} s")
    print(f"seed's naive loop    {seed_time:8.1f} s   ratio {seed_time / fast:.2f}x")
    print(f"better naive loop    {better_time:8.1f} s   ratio {better_time / fast:.2f}x")
    print(
        f"identical accuracies (item by item): {identical}; naive loops agree on every prediction: {same_predictions}"
    )
    print_ratio("ablate: the seed's naive loop / layerscope", [seed_time], [fast])
    print_ratio("ablate: a better naive loop / layerscope", [better_time], [fast])
    print("accuracy:", ", ".join(f"{c} {sum(v) / len(v):.3f}" for c, v in ours.items()))


if __name__ == "__main__":
    main()
