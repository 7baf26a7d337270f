"""A step in a notebook: the libraries' warnings and log lines are held while it runs, layerscope's own still show;
plotly.js comes with the first figure of each notebook only, or from the CDN where the user opts in. Run in the
session's Jupyter kernel (``tests/notebook_kernel.py``), as a user's notebook runs."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save_file

#: a piece of plotly.js itself (not of a figure's call to it)
PLOTLY_JS = "plotly.js v"


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "model.safetensors"
    tensors = {f"model.layers.{i}.mlp.up_proj.weight": np.zeros((4, 4), np.float16) for i in range(3)}
    save_file(tensors, str(path))
    return path


def _notebook(*sources: str):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    return notebook


def _stderr(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stderr")


def _html(cell) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs if "data" in o)


def _errors(notebook) -> list:
    return [o for cell in notebook.cells for o in cell.outputs if o.output_type == "error"]


def test_library_chatter_is_held_while_a_step_runs(notebook_kernel, checkpoint, tmp_path):
    """A step that drives libraries which warn and log (as transformers and accelerate do) shows none of it; what
    was held stays readable; a layerscope warning in the same step still shows."""
    notebook = _notebook(
        "import logging, warnings\nimport layerscope\nfrom layerscope.experiments import layout as _layout",
        # the step's own code calls into "libraries" that warn and log, then layerscope warns
        "_run = _layout.run_layout\n"
        "def _chatty(config, *args, **kwargs):\n"
        "    logging.getLogger('accelerate.big_modeling').warning('Some parameters are on the meta device')\n"
        "    warnings.warn_explicit('`torch_dtype` is deprecated! Use `dtype` instead!', FutureWarning,\n"
        "                           'site-packages/transformers/configuration_utils.py', 1)\n"
        "    result = _run(config, *args, **kwargs)\n"
        "    warnings.warn_explicit('3 words split into several tokens', UserWarning, 'layerscope/tokens.py', 1)\n"
        "    return result\n"
        "_layout.run_layout = _chatty",
        f"result = layerscope.layout({str(checkpoint)!r})",
        "from layerscope.notebook import held\n"
        "records, caught = held()\n"
        "print([r.getMessage() for r in records], [str(m.message) for m in caught])\n"
        "_layout.run_layout = _run",
    )
    notebook_kernel.run(notebook, tmp_path / "quiet")
    assert not _errors(notebook), _errors(notebook)
    step = notebook.cells[2]
    assert "meta device" not in _stderr(step) and "deprecated" not in _stderr(step)
    assert "3 words split into several tokens" in _stderr(step)
    printed = "".join(o.get("text", "") for o in notebook.cells[3].outputs)
    assert "Some parameters are on the meta device" in printed and "`torch_dtype` is deprecated" in printed


def test_plotly_js_comes_once_per_notebook_or_from_the_cdn(notebook_kernel, checkpoint, tmp_path):
    shows = [
        "import layerscope\nfrom layerscope import notebook as shown\nshown.plotlyjs('inline')",
        f"result = layerscope.layout({str(checkpoint)!r})\nresult",
        "result",
    ]
    first = _notebook(*shows)
    notebook_kernel.run(first, tmp_path / "first")
    second = _notebook(*shows, "shown.plotlyjs('cdn')\nresult", "shown.plotlyjs('inline')")
    notebook_kernel.run(second, tmp_path / "second")
    assert not _errors(first) and not _errors(second)
    for notebook in (first, second):  # each notebook has plotly.js once, with its first figure
        with_figures = [_html(cell) for cell in notebook.cells[1:3]]
        assert PLOTLY_JS in with_figures[0] and len(with_figures[0]) > 1_000_000
        assert (
            PLOTLY_JS not in with_figures[1] and len(with_figures[1]) < 100_000 and "Plotly.newPlot" in with_figures[1]
        )
    cdn = _html(second.cells[3])
    assert PLOTLY_JS not in cdn and "cdn.plot.ly" in cdn and len(cdn) < 100_000
