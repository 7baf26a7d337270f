"""One Jupyter kernel that runs notebooks one after another, for the notebook tests.

The kernel runs this interpreter (``sys.executable``, whatever kernelspecs the machine or the user has installed)
with ``src/`` on its path, offline, without the user's IPython profile. Before each notebook its namespace is
reset and its working directory changed to the notebook's own. Loading the default model is the costly first
step of nearly every example notebook, so in this kernel ``layerscope.load_model`` returns the model it already
loaded for the same arguments, as the ``default_model`` fixture does for the tests; ``forget_models()`` drops them.

The kernel is driven from one thread of its own, in the order the work was handed in: :meth:`submit` returns at
once, so the notebooks run in the kernel's process while the session's other tests run in pytest's (two cores
in use instead of one); :meth:`run` waits for its notebook.
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
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
    """A kernel started in the background; :meth:`run` executes a notebook in it (:meth:`submit`: later),
    :meth:`shutdown` ends it."""

    def __init__(self, home: Path):
        self.home = home
        self.km = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notebook-kernel")
        self._pending: list[Future] = []
        self._started = self._thread.submit(self._start)

    def _do(self, work, *args) -> Future:
        """Hand ``work(*args)`` to the kernel's thread, after the start and the work handed in before."""

        def after_start():
            self._started.result()  # a kernel that did not start fails every piece of work with its error
            return work(*args)

        future = self._thread.submit(after_start)
        self._pending.append(future)
        return future

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
        from jupyter_client.session import Session
        from jupyter_core.utils import run_sync
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError

        notebook = nbformat.v4.new_notebook() if notebook is None else notebook
        notebook.cells[:0] = [nbformat.v4.new_code_cell(source) for source in sources]
        # each notebook is a front end of its own, as in Jupyter: a session id of its own (the same key)
        self.km.session = Session(key=self.km.session.key, signature_scheme=self.km.session.signature_scheme)
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

    def submit(self, notebook, cwd: Path) -> Future:
        """Execute ``notebook`` (an ``nbformat`` notebook, given its outputs in place) with a fresh namespace and
        ``cwd`` as the working directory, once the work handed in before is done; the future's result is the
        notebook."""
        return self._do(self._run, notebook, cwd)

    def run(self, notebook, cwd: Path) -> None:
        """:meth:`submit`, waiting for the notebook to finish."""
        self.submit(notebook, cwd).result()

    def _run(self, notebook, cwd: Path):
        cwd.mkdir(parents=True, exist_ok=True)
        reset = f"%reset -f\n__import__('os').chdir({str(cwd)!r})"
        self._execute([reset], notebook)
        reset_cell = notebook.cells.pop(0)
        assert not _errors([reset_cell]), _errors([reset_cell])
        return notebook

    def forget_models(self) -> None:
        """Drop the models the kernel remembers (the next ``load_model`` loads again)."""
        done = self._do(self._execute, [FORGET_MODELS]).result()
        assert not _errors(done.cells), _errors(done.cells)

    def shutdown(self) -> None:
        """End the kernel; work handed in and not begun is dropped (a session stopped early)."""
        from jupyter_core.utils import run_sync

        for future in self._pending:
            future.cancel()  # only work that has not begun
        try:
            if self._started.exception() is None:
                self._thread.submit(lambda: run_sync(self.km.shutdown_kernel)(now=True)).result()
        finally:
            self._thread.shutdown(wait=True)


def _errors(cells) -> list[str]:
    """The tracebacks of the error outputs of ``cells``."""
    return [
        "\n".join(o.get("traceback", [])) for cell in cells for o in cell.get("outputs", []) if o.output_type == "error"
    ]
