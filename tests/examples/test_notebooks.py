"""The example notebooks: each runs top to bottom in a real Jupyter kernel without ipywidgets, on the default model,
with no error output; the repository keeps them without outputs. One kernel runs them all, one after another, each
with a fresh namespace and its own working directory; the default model it loaded for the first is kept for the
others (``tests/notebook_kernel.py``). The kernel runs them from the start of the session, beside the other tests, and
these tests, which run last, read what it ran (``notebook_runs``, ``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
EXPECTED = {
    "000-digit-embeddings.ipynb",
    "001-layers-and-arithmetic.ipynb",
    "002-token-categories.ipynb",
    "003-checkpoint-layout-and-sentence-embeddings.ipynb",
    "004-single-token-echo.ipynb",
    "float32-vs-bfloat16.ipynb",
    "your-own-model.ipynb",
}
# Words in a cell's stderr that mean something went wrong (warnings are allowed).
STDERR_FAILURES = ("Traceback", "Error")
# More outputs than this in one cell, or more stderr lines, is a flood (a progress display that prints every update).
MAX_OUTPUTS, MAX_STDERR_LINES = 30, 100


def test_every_seed_has_a_notebook():
    assert EXPECTED <= {path.name for path in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_outputs_are_stripped(path):
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "a notebook without code"
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} keeps its outputs"
            assert cell.execution_count is None, f"cell {index} keeps its execution count"
        assert "attachments" not in cell, f"cell {index} keeps attachments"


def test_problems_are_found_in_outputs():
    """What counts as a failure, on made-up outputs (no kernel): an error, a traceback or error on stderr, a flood;
    a warning on stderr is fine."""
    nbformat = pytest.importorskip("nbformat")
    v4 = nbformat.v4

    def cell(*outputs):
        made = v4.new_code_cell("x")
        made.outputs = list(outputs)
        return made

    notebook = v4.new_notebook()
    notebook.cells = [
        cell(v4.new_output("stream", name="stderr", text="UserWarning: 3 words split into several tokens\n")),
        cell(v4.new_output("error", ename="ValueError", evalue="bad", traceback=["Traceback", "ValueError: bad"])),
        cell(v4.new_output("stream", name="stderr", text="Traceback (most recent call last):\n")),
        cell(v4.new_output("stream", name="stdout", text="Error rates per model\n")),
        cell(*[v4.new_output("display_data", data={"text/plain": "Loading 0/236"}) for _ in range(MAX_OUTPUTS + 1)]),
        cell(v4.new_output("stream", name="stderr", text="Loading 1/236\n" * (MAX_STDERR_LINES + 1))),
        cell(*[v4.new_output("stream", name="stderr", text=f"\rRemoving {i}/300") for i in range(300)]),  # one line
        cell(*[v4.new_output("stream", name="stdout", text=f"step {i}/300\n") for i in range(300)]),  # 300 lines
        cell(v4.new_output("stream", name="stderr", text="Traceback (most recent call last):\r\n  ValueError\r\n")),
    ]
    found = [(index, kind) for index, kind, _ in _problems(notebook)]
    assert found == [(1, "error"), (2, "stderr"), (4, "flood"), (5, "flood"), (7, "flood"), (8, "stderr")]
    assert [o.text for o in _as_shown(notebook.cells[6].outputs)] == ["Removing 299/300"]


def _as_shown(outputs: list) -> list:
    """The outputs with in-place updates applied as Jupyter applies them: a stream output that starts with a
    carriage return continues the stream output before it, and a carriage return rewrites its line (``\r\n`` is
    a plain line end). A text progress bar is then one output and one line, however many updates it sent; any
    other output, a printed line included, still counts on its own."""
    import re

    import nbformat

    shown = []
    for output in outputs:
        if output.output_type != "stream":
            shown.append(output)
            continue
        previous = shown[-1] if shown else None
        if previous is not None and previous.output_type == "stream" and previous.name == output.name:
            if output.text.startswith("\r") or not output.text.strip():
                previous.text += output.text
                continue
        shown.append(nbformat.from_dict(dict(output)))
    for output in shown:
        if output.output_type == "stream":
            text = re.sub(r"\r+\n", "\n", output.text)
            output.text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))
    return shown


def _problems(notebook) -> list[tuple[int, str, str]]:
    """``(cell, kind, text)`` for every error output, every stderr output that reports an error, and every cell
    that floods its output."""
    found = []
    for index, cell in enumerate(notebook.cells):
        outputs = _as_shown(cell.get("outputs", []))
        stderr_lines = sum(o.text.count("\n") for o in outputs if o.output_type == "stream" and o.name == "stderr")
        if len(outputs) > MAX_OUTPUTS or stderr_lines > MAX_STDERR_LINES:
            found.append((index, "flood", f"{len(outputs)} outputs, {stderr_lines} lines on stderr"))
        for output in outputs:
            if output.output_type == "error":
                text = "\n".join([f"{output.ename}: {output.evalue}", *output.traceback])
                found.append((index, "error", text))
            elif output.output_type == "stream" and output.name == "stderr":
                if any(word in output.text for word in STDERR_FAILURES):
                    found.append((index, "stderr", output.text))
    return found


def _describe(path: Path, problems) -> str:
    return "\n\n".join(f"{path.name}, cell {cell} ({kind}):\n{text[-3000:]}" for cell, kind, text in problems)


@pytest.fixture(scope="module")
def kernel(notebook_kernel):
    """The session's kernel; the models the notebooks loaded are dropped when they are done."""
    yield notebook_kernel
    notebook_kernel.forget_models()


#: notebooks run by a test of their own, which checks more than their outputs
OWN_TESTS = {"float32-vs-bfloat16.ipynb"}


@pytest.mark.default_model
@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name not in OWN_TESTS], ids=lambda path: path.stem)
def test_notebook_runs_without_errors(path, notebook_runs, kernel):
    """The notebook as the session's kernel ran it top to bottom (``notebook_runs`` in ``tests/conftest.py``: from
    the start of the session, beside the other tests)."""
    problems = _problems(notebook_runs[path].result())
    assert not problems, _describe(path, problems)


@pytest.mark.default_model
def test_the_float32_bfloat16_notebook_saves_a_command_that_reruns_it(kernel, tmp_path):
    """The notebook compares the default model in float32 and bfloat16 (each model its own dtype); the command its
    run.json saves, run from the shell, runs the same comparison: the same config in its run.json."""
    import json
    import os
    import subprocess
    import sys

    import nbformat

    path = EXAMPLES / "float32-vs-bfloat16.ipynb"
    problems = _problems(kernel.submit(nbformat.read(path, as_version=4), tmp_path / "run").result())
    assert not problems, _describe(path, problems)
    saved = json.loads((tmp_path / "run" / "runs" / "float32-vs-bfloat16" / "run.json").read_text())
    assert [m.get("dtype") for m in saved["config"]["models"]] == [None, "bfloat16"]
    command = saved["command"]
    assert command[:2] == ["layerscope", "compare"] and command[-2] == "--out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    rerun = tmp_path / "shell"
    argv = [sys.executable, "-m", "layerscope", *command[1:-2], "--out", str(rerun), "--quiet"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    again = json.loads((rerun / "run.json").read_text())
    assert again["config"] == saved["config"]
    assert again["command"][:-1] == command[:-1]
