"""One Jupyter kernel that runs notebooks one after another, for the notebook tests.

The kernel runs this interpreter (``sys.executable``, whatever kernelspecs the machine or the user has installed)
with ``src/`` on its path, offline, without the user's IPython profile. Before each notebook its namespace is
reset and its working directory changed to the notebook's own. Loading the default model is the costly first
step of nearly every example notebook, so in this kernel ``layerscope.load_model`` returns the model it already
loaded for the same arguments, as the ``default_model`` fixture does for the tests; ``forget_models()`` drops them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run once when the kernel starts: load_model remembers what it loaded (the patched attribute outlives %reset).
REMEMBER_MODELS = """
import functools as _functools

import layerscope as _layerscope


def _remembering(load):
    models = {}

    @_functools.wraps(load)
    def load_model(*args, **kwargs):
        key = repr((args, sorted(kwargs.items())))
        if key not in models:
            models[key] = load(*args, **kwargs)
        return models[key]

    load_model.forget = models.clear
    return load_model


_layerscope.load_model = _remembering(_layerscope.load_model)
"""

FORGET_MODELS = "import gc, layerscope\nlayerscope.load_model.forget()\ngc.collect()"


class NotebookKernel:
    """A started kernel; :meth:`run` executes a notebook in it, :meth:`shutdown` ends it."""

    def __init__(self, home: Path):
        self.home = home
        self.km = None
        self._start()

    def _start(self) -> None:
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        spec = self.home / "kernels" / "python3"
        spec.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))
        self.km = AsyncKernelManager(
            kernel_name="python3",
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(self.home / "kernels")]),
            connection_file=str(self.home / "connection.json"),
        )
        # IPYTHONDIR: no profile or startup file of the user's runs before the notebook.
        env = dict(os.environ, HF_HUB_OFFLINE="1", IPYTHONDIR=str(self.home / "ipython"))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
        cwd = self.home / "cwd"
        cwd.mkdir(exist_ok=True)
        run_sync(self.km.start_kernel)(cwd=str(cwd), env=env, extra_arguments=["--HistoryManager.hist_file=:memory:"])
        setup = self._execute([REMEMBER_MODELS])
        assert not _errors(setup.cells), _errors(setup.cells)

    def _execute(self, sources: list[str], notebook=None, timeout: int = 600):
        """Run ``sources`` as code cells, then ``notebook``'s cells (if given), in the kernel; the cells run, with
        their outputs. Execution stops at a cell that raises (its error is in its outputs)."""
        import nbformat
        from jupyter_core.utils import run_sync
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError

        notebook = nbformat.v4.new_notebook() if notebook is None else notebook
        notebook.cells[:0] = [nbformat.v4.new_code_cell(source) for source in sources]
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", km=self.km)
        try:
            client.execute()  # the kernel manager has a kernel: nbclient uses it and leaves it running
        except CellExecutionError:
            pass  # the failing cell's error output is in the notebook; execution stopped there
        except BaseException:  # a timeout or a dead kernel: the next notebook gets a fresh kernel
            run_sync(self.km.shutdown_kernel)(now=True)
            self._start()
            raise
        return notebook

    def run(self, notebook, cwd: Path) -> None:
        """Execute ``notebook`` (an ``nbformat`` notebook, given its outputs in place) with a fresh namespace and
        ``cwd`` as the working directory."""
        cwd.mkdir(parents=True, exist_ok=True)
        reset = f"%reset -f\n__import__('os').chdir({str(cwd)!r})"
        self._execute([reset], notebook)
        reset_cell = notebook.cells.pop(0)
        assert not _errors([reset_cell]), _errors([reset_cell])

    def forget_models(self) -> None:
        """Drop the models the kernel remembers (the next ``load_model`` loads again)."""
        done = self._execute([FORGET_MODELS])
        assert not _errors(done.cells), _errors(done.cells)

    def shutdown(self) -> None:
        from jupyter_core.utils import run_sync

        run_sync(self.km.shutdown_kernel)(now=True)


def _errors(cells) -> list[str]:
    """The tracebacks of the error outputs of ``cells``."""
    return [
        "\n".join(o.get("traceback", [])) for cell in cells for o in cell.get("outputs", []) if o.output_type == "error"
    ]
