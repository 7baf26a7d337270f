"""Progress output: where it goes (terminal, notebook, neither, quiet), never a flood in a notebook, and
transformers' own bars quiet only while a model loads.

The notebook tests execute cells in a real ipykernel (nbclient; the session's ``notebook_kernel``) in this environment,
which has no ipywidgets: tqdm's text bar, one line updated in place.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from layerscope import progress


class _Shown:
    def __init__(self, capsys):
        self.capsys = capsys

    def getvalue(self) -> str:
        return self.capsys.readouterr().err


@pytest.fixture
def shown(monkeypatch, capsys):
    """Progress on (the test session turns it off); stderr captured (not a terminal)."""
    monkeypatch.setattr(progress, "_enabled", True)
    return _Shown(capsys)


def test_library_bars_are_off_only_while_a_step_runs():
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_info()
    hf_logging.enable_progress_bar()
    try:
        with progress.step("Loading"):
            assert not hf_logging.is_progress_bar_enabled()
            assert hf_logging.get_verbosity() == hf_logging.ERROR
        assert hf_logging.is_progress_bar_enabled() and hf_logging.get_verbosity() == hf_logging.INFO
        hf_logging.disable_progress_bar()
        with pytest.raises(RuntimeError), progress.step("Loading"):
            raise RuntimeError("failed load")
        assert not hf_logging.is_progress_bar_enabled() and hf_logging.get_verbosity() == hf_logging.INFO
    finally:
        hf_logging.set_verbosity_warning()
        hf_logging.enable_progress_bar()


def test_quiet_shows_nothing(shown, monkeypatch):
    monkeypatch.setattr(progress, "_enabled", False)
    assert progress.mode() == "off"
    with progress.step("Loading x"):
        pass
    assert list(progress.track(range(5), "Counting")) == list(range(5))
    assert shown.getvalue() == ""


def test_not_a_terminal_shows_one_closing_line_per_step(shown):
    assert progress.mode() == "plain"
    with progress.step("Loading x"):
        pass
    assert list(progress.track(range(5), "Counting")) == list(range(5))
    lines = shown.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Loading x done (") and lines[1].startswith("Counting")
    assert "\r" not in shown.getvalue() and "\x1b" not in shown.getvalue()


def test_notebook_mode_is_one_line_per_step_even_nested(shown, monkeypatch):
    """In a notebook (simulated here; for real below) a bar is tqdm's; a bar inside another writes one line."""
    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    assert progress.mode() == "notebook"
    with progress.step("Outer"):
        for _ in progress.track(range(300), "Counting"):
            with progress.step("Inner"):
                pass
    text = shown.getvalue()
    finished = [line.split("\r")[-1] for line in text.split("\n") if line.strip()]
    assert finished[0].startswith("Inner done (") and len(finished) == 302, finished[:3]
    assert sum(line.startswith("Counting done (") for line in finished) == 1
    assert finished[-1].startswith("Outer done (")
    assert progress._notebook_depth == 0
    assert len(list(progress.track(range(2000), "Many"))) == 2000
    assert shown.getvalue().count("\n") <= 2  # one line, updated in place


def _run_notebook(kernel, code: str, cwd: Path) -> list:
    """The outputs of ``code`` run as a notebook cell in ``kernel`` (the session's, ``tests/notebook_kernel.py``)."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell(code))
    kernel.run(notebook, cwd)
    return notebook.cells[0].outputs


def _check_outputs(outputs: list, most: int) -> str:
    """The stream text; no error, at most ``most`` lines as shown (a line updated in place is one line)."""
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, "\n".join(errors[0].traceback)
    streams = [o for o in outputs if o.output_type == "stream"]
    text = "".join(o.text for o in streams)
    shown = [line.split("\r")[-1] for line in text.split("\n") if line.split("\r")[-1].strip()]
    assert len(shown) <= most, shown  # no flood
    assert len(outputs) <= 4 * most, [o.get("text", o.output_type) for o in outputs]
    assert "Loading weights" not in text and "TqdmWarning" not in text and "ipywidgets" not in text, text
    assert all(o.output_type == "stream" for o in outputs), outputs  # no rich display fallbacks
    return text


def test_a_notebook_kernel_without_ipywidgets_gets_single_lines(tiny_model_dirs, notebook_kernel, tmp_path):
    code = f"""
import layerscope
from transformers.utils import logging
model = layerscope.load_model({str(tiny_model_dirs["llama"])!r})
words = [w for w in "abcdefghijklmnop"]
result = layerscope.layers(tokens=words, model=model, batch_size=2, layers="embed")
print("after", logging.get_verbosity(), logging.is_progress_bar_enabled())
"""
    text = _check_outputs(_run_notebook(notebook_kernel, code, tmp_path), most=3)
    assert "Loading llama done" in text
    assert "Capturing" in text
    assert "after 30 True" in text  # the kernel's transformers settings are as they were


@pytest.mark.default_model
def test_a_notebook_loads_the_default_model_without_a_flood(notebook_kernel, tmp_path):
    code = """
import layerscope
model = layerscope.load_model()
result = layerscope.tokens(["digits"], model=model)
"""
    notebook_kernel.forget_models()  # a real load, not the model an example notebook loaded
    text = _check_outputs(_run_notebook(notebook_kernel, code, tmp_path), most=2)
    assert "Loading gemma-3-270m-q4_k_m done" in text


def test_not_a_terminal_a_long_step_says_so_while_it_runs(shown, monkeypatch):
    """Piped stderr: a step past its first second writes a line then (not only when done); a long loop writes
    its count as it goes; a long line is not wrapped at 80 columns."""
    import time

    monkeypatch.setattr(progress, "PLAIN_START_S", 0.05)
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)
    message = "Reading a-model-with-a-rather-long-name-so-that-the-line-is-long.gguf " + "x" * 60
    with progress.step(message):
        time.sleep(0.3)
        assert shown.capsys.readouterr().err == f"{message} ...\n"
    assert list(progress.track(range(3), "Counting")) == [0, 1, 2]
    lines = shown.getvalue().splitlines()
    assert lines[0].startswith(f"{message} done (")
    assert lines[1:4] == ["Counting 1/3 (0 s)", "Counting 2/3 (0 s)", "Counting 3/3 (0 s)"]
    assert lines[4].startswith("Counting 3/3 done (")
