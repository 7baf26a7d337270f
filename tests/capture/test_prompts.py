"""Prompt positions: last, all, explicit groups, and one-line errors."""

from __future__ import annotations

import pytest

from layerscope.capture import CapturePrompt, prompts_at
from layerscope.errors import LayerscopeError


def test_prompt_positions():
    assert prompts_at([[5, 6, 7]], "all")[0].groups == ((0,), (1,), (2,))
    assert prompts_at([[5, 6, 7]], [[-1, 0]])[0].groups == ((2, 0),)
    with pytest.raises(LayerscopeError, match="outside"):
        prompts_at([[5, 6]], [[2]])
    with pytest.raises(LayerscopeError, match="positions"):
        prompts_at([[5, 6]], "middle")
    with pytest.raises(LayerscopeError, match="empty prompt"):
        CapturePrompt((), ((0,),))
