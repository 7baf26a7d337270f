"""Memory budgets: sizes and one-line errors."""

from __future__ import annotations

import pytest

from layerscope.capture import parse_budget
from layerscope.errors import LayerscopeError


def test_parse_budget():
    assert parse_budget("512MB") == 512 * 10**6
    assert parse_budget("2GiB") == 2 << 30
    assert parse_budget(1000) == 1000 and parse_budget("1e3") == 1000
    for bad in ("lots", "-1"):
        with pytest.raises(LayerscopeError, match="budget"):
            parse_budget(bad)
