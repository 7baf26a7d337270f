"""Padding-aware batches against brute force over every way to cut the sorted prompts."""

from __future__ import annotations

import itertools

import pytest

from layerscope.capture.batching import padding_batches


def _cost(batches, lengths, overhead):
    return sum(len(b) * max(lengths[i] for i in b) + overhead for b in batches)


def _brute_force(lengths, batch_size, overhead):
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    best = None
    for cuts in itertools.product([False, True], repeat=len(order) - 1):
        batches, current = [], [order[0]]
        for cut, index in zip(cuts, order[1:]):
            if cut:
                batches.append(current)
                current = []
            current.append(index)
        batches.append(current)
        if max(map(len, batches)) <= batch_size:
            cost = _cost(batches, lengths, overhead)
            best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(30))
def test_the_cost_is_the_least_of_every_cut(seed):
    import random

    rng = random.Random(seed)
    lengths = [rng.choice([1, 2, 3, 5, 8, 13, 40]) for _ in range(rng.randint(1, 11))]
    batch_size, overhead = rng.randint(1, 5), rng.choice([0, 4, 16])
    batches = padding_batches(lengths, batch_size, overhead)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert _cost(batches, lengths, overhead) == _brute_force(lengths, batch_size, overhead)


def test_prompts_of_one_length_are_never_padded_and_batches_go_longest_first():
    lengths = [12] * 85 + [5] * 44 + [18] * 43 + [2] * 42 + [4] * 41 + [3]
    batches = padding_batches(lengths, 32)
    widths = [max(lengths[i] for i in b) for b in batches]
    assert widths == sorted(widths, reverse=True)
    padded = sum(len(b) * w for b, w in zip(batches, widths))
    assert padded - sum(lengths) < 16  # less than one more forward's overhead; chunks of 32 pad 167 positions
    assert all(len(b) <= 32 for b in batches)


def test_a_batch_size_below_one_is_refused():
    with pytest.raises(ValueError, match="batch size 0"):
        padding_batches([3], 0)
