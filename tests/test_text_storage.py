"""Token text with lone surrogates in pandas tables, where pyarrow is installed (the test extra brings it).

``tests/test_load_run.py`` writes such text into every table of every experiment and reads it back."""

from __future__ import annotations

import pandas as pd
import pytest

from layerscope.text_storage import python_strings

LONE = "a\udcffb"  # a byte-level token cut inside a UTF-8 sequence


def test_pyarrow_strings_refuse_what_python_strings_keep():
    pytest.importorskip("pyarrow")
    if pd.get_option("mode.string_storage") not in ("auto", "pyarrow"):
        pytest.skip("pandas is set to Python strings here")
    with pytest.raises(UnicodeEncodeError):
        pd.DataFrame({"token": [LONE]})  # what layerscope's tables would hit without python_strings
    with python_strings():
        frame = pd.DataFrame({"token": [LONE]})
    assert frame["token"].tolist() == [LONE]
    assert frame["token"].str.len().tolist() == [3]  # still usable after the context
