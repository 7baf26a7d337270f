"""Per-layer residual error against a reference, and the block where it grows most, from their definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.analysis.residual_error import ERROR_COLUMNS, growth_block, residual_errors


def test_every_column_equals_its_definition():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(7, 3, 16)).astype(np.float32)  # (item, layer, d)
    scale = np.array([0.01, 0.1, 0.5])[None, :, None]  # the error grows with depth
    other = (reference + rng.normal(size=(7, 3, 16)) * scale).astype(np.float32)
    table = residual_errors(reference, other, ["embed", "0", "1"], [0, 1, 2])
    assert list(table.columns) == ERROR_COLUMNS and list(table["layer"]) == ["embed", "0", "1"]
    for i in range(3):
        r, x = reference[:, i].astype(np.float64), other[:, i].astype(np.float64)
        diff = np.linalg.norm(x - r, axis=1)
        cosine = (x * r).sum(axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(r, axis=1))
        row = table.iloc[i]
        assert row["relative_error"] == pytest.approx(np.mean(diff / np.linalg.norm(r, axis=1)), rel=1e-5)
        assert row["cosine"] == pytest.approx(cosine.mean(), rel=1e-5)
        assert row["min_cosine"] == pytest.approx(cosine.min(), rel=1e-5)
        assert row["mean_l2"] == pytest.approx(diff.mean(), rel=1e-5)
        assert row["max_abs_diff"] == pytest.approx(np.abs(x - r).max(), rel=1e-5)
    assert table["relative_error"].is_monotonic_increasing


def test_a_reference_against_itself_has_no_error_and_no_growth_block():
    reference = np.random.default_rng(1).normal(size=(5, 4, 8))
    table = residual_errors(reference, reference.copy(), ["embed", "0", "1", "norm"], [0, 1, 2, 3])
    assert (table["relative_error"] == 0).all() and (table["max_abs_diff"] == 0).all()
    np.testing.assert_allclose(table["cosine"], 1.0, atol=1e-12)
    assert growth_block(table) is None


def test_the_growth_block_is_the_largest_rise_over_its_input():
    errors = pd.DataFrame(
        {
            "layer": ["embed", "0", "1", "2", "norm"],
            "depth": [0, 1, 2, 3, 4],
            "relative_error": [0.01, 0.02, 0.10, 0.12, 0.50],  # the final norm's rise is not a block's
        }
    )
    layer, growth = growth_block(errors)
    assert layer == "1" and growth == pytest.approx(0.08)
    shrinking = errors.assign(relative_error=[0.5, 0.4, 0.3, 0.2, 0.1])
    assert growth_block(shrinking) is None
