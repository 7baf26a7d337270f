"""Layer phases: planted structure is found, and ranges are described in layer names."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.analysis.cka import cka_matrix
from layerscope.analysis.phases import Phases, find_phases
from layerscope.errors import LayerscopeError


def test_planted_two_phase_input_gives_the_planted_boundary():
    rng = np.random.default_rng(3)
    # 12 depths of 30 items: depths 0-6 (embed and blocks 0-5) share one representation, 7-11 (blocks 6-10)
    # another, each with small noise.
    first, second = rng.normal(size=(30, 16)), rng.normal(size=(30, 16))
    layers = [first + 0.05 * rng.normal(size=first.shape) for _ in range(7)]
    layers += [second + 0.05 * rng.normal(size=second.shape) for _ in range(5)]
    phases = find_phases(cka_matrix(np.stack(layers)))
    assert phases.bounds == [(0, 6), (7, 11)]
    assert phases.boundaries == [7]
    assert phases.describe() == "embed..5 | 6..10"
    assert phases.describe([f"d{i}" for i in range(12)]) == "d0..d6 | d7..d11"


def test_describe_names_single_layer_phases_alone():
    phases = Phases(bounds=[(0, 0), (1, 3), (4, 4)], contrast=0.0, silhouette=0.0, consecutive=[])
    assert phases.describe() == "embed | 0..2 | 3"
    assert phases.boundaries == [1, 4]


def test_fixed_number_of_phases_and_bad_input():
    sim = np.eye(5)
    assert len(find_phases(sim, n_phases=3).bounds) == 3
    with pytest.raises(LayerscopeError, match="valid: 1..5"):
        find_phases(sim, n_phases=6)
    with pytest.raises(LayerscopeError, match="square"):
        find_phases(np.zeros((2, 3)))


def test_a_degenerate_layer_does_not_decide_the_split():
    """Prompts that share their last token: the embedding layer is the same vector for all of them."""
    from layerscope.analysis.cka import cka_matrix, degenerate_layers

    rng = np.random.default_rng(0)
    items, d = 6, 32
    blocks = [rng.normal(size=(items, d)) for _ in range(3)]  # three planted phases of layers
    layers = [np.tile(rng.normal(size=(1, d)), (items, 1))]  # embed: one shared token
    for phase, n_layers in zip(blocks, (4, 3, 5)):
        layers += [phase + 0.05 * rng.normal(size=(items, d)) for _ in range(n_layers)]
    residuals = np.stack(layers)  # (layer, item, d)
    mask = degenerate_layers(residuals)
    assert mask.tolist() == [True] + [False] * 12
    plain = find_phases(cka_matrix(residuals))
    assert plain.bounds[0] == (0, 0)  # without the mask the shared embedding is a phase of its own
    phases = find_phases(cka_matrix(residuals), degenerate=mask)
    assert phases.bounds == [(0, 4), (5, 7), (8, 12)]  # embed joins the first planted phase
    assert find_phases(cka_matrix(residuals[1:])).bounds == [(a - 1, b - 1) for a, b in [(1, 4), (5, 7), (8, 12)]]
