"""Shared fixtures: tiny random models of every architecture, a tiny sentence-embedding model, and the real default
model, a full tour of it and a headless chromium, each built once per session.

Tests come in two tiers. A test is marked ``slow`` when it needs the real default model (the ``default_model``
fixture or mark), a full tour, chromium, a local Ray instance or a Jupyter kernel (the fixtures in ``SLOW_FIXTURES``),
or when it is marked ``slow`` itself (the ones that start many processes). ``make check`` runs the rest
(``pytest -m "not slow"``); ``make test`` runs all of them.

Work that runs in a process of its own (the example notebooks in the session's kernel, the default model's bfloat16
conversion) starts with the session and runs beside the other tests; the notebook tests run last and wait for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def xdist_workers() -> int:
    """How many pytest-xdist workers share the machine (0 without xdist)."""
    return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))


# Under pytest-xdist the workers share the cores: each worker's torch, and every process it starts, gets its share
# (two workers on two cores with two threads each would spin against each other).
if xdist_workers():
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // xdist_workers())))

from tiny_models import ARCHITECTURES, save_tiny_model  # noqa: E402

import layerscope  # noqa: E402
from layerscope import progress  # noqa: E402

progress.set_enabled(False)

#: Fixtures whose tests go to the slow tier: the real default model, a full tour of it, its bfloat16 cache entry,
#: chromium, Ray, a kernel.
SLOW_FIXTURES = frozenset(
    {"default_model", "full_tour", "default_bfloat16_cache", "browser", "ray_instance", "notebook_kernel"}
)
#: Fixtures whose tests run last: the work they wait for (the notebooks) runs in another process from the start
#: of the session, so by the end it is done.
LAST_FIXTURES = frozenset({"notebook_runs", "notebook_kernel"})
#: Work started with the session, in a process of its own, when a selected test needs it: the fixture that starts
#: it, by the fixture the tests use.
BACKGROUND = {"default_bfloat16_cache": "bfloat16_conversion", "notebook_runs": "notebook_runs"}


#: Under pytest-xdist (``make test`` and ``make check`` run ``-n auto``), the tests that share costly session work go
#: to one worker as one group, and the groups go out first, costliest first: the notebooks (one kernel), the full
#: tour, the bfloat16 conversion, the local Ray instance, the tiny quick tour. Every other test goes with its module
#: (its module-scoped fixtures are built once), the modules that load the default model first, then by size.
XDIST_GROUPS = {
    "notebook_runs": "notebooks",
    "notebook_kernel": "notebooks",
    "full_tour": "full_tour",
    "default_bfloat16_cache": "bfloat16",
    "ray_instance": "ray",
    "tiny_quick_tour": "tiny_quick_tour",
}
GROUP_ORDER = tuple(dict.fromkeys(XDIST_GROUPS.values()))


def pytest_collection_modifyitems(config, items) -> None:
    """Mark ``slow`` every test that uses a fixture of ``SLOW_FIXTURES`` (directly or through another fixture) or
    is marked ``default_model``; a test that uses the ``default_model`` fixture is marked ``default_model`` too.
    Without xdist, tests that use a fixture of ``LAST_FIXTURES`` move to the end, in their order (their work runs
    in the background meanwhile). Under xdist, the tests are ordered group by group (:func:`xdist_group`): the
    groups of ``GROUP_ORDER`` in its order, then the default model's modules, then by size."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if "default_model" in used and item.get_closest_marker("default_model") is None:
            item.add_marker(pytest.mark.default_model)
        if used & SLOW_FIXTURES or item.get_closest_marker("default_model") is not None:
            item.add_marker(pytest.mark.slow)
    if xdist_workers():
        _group_for_xdist(items)
        return
    last = [item for item in items if set(getattr(item, "fixturenames", ())) & LAST_FIXTURES]
    if last:
        kept = set(map(id, last))
        items[:] = [item for item in items if id(item) not in kept] + last


def xdist_group(item) -> str:
    """The ``xdist_group`` of ``item``: the costliest of ``XDIST_GROUPS`` among its fixtures, else its module."""
    used = set(getattr(item, "fixturenames", ()))
    special = sorted({XDIST_GROUPS[name] for name in used if name in XDIST_GROUPS}, key=GROUP_ORDER.index)
    return special[0] if special else item.nodeid.split("::")[0]


#: Where the workers write ``{nodeid: group}`` for the scheduler (set by the controlling process for its workers).
GROUPS_FILE = "LAYERSCOPE_TEST_GROUPS"


def pytest_configure(config) -> None:
    """In the process that controls xdist workers: a file for the groups the workers find (they inherit the
    variable), read by :func:`pytest_xdist_make_scheduler`."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        os.environ[GROUPS_FILE] = str(Path(tempfile.mkdtemp(prefix="layerscope-test-groups-")) / "groups.json")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` by the groups of :func:`xdist_group`: xdist's own marks name a test's group by editing
    its node id, which this pytest keeps elsewhere, so the groups travel through ``$LAYERSCOPE_TEST_GROUPS``."""
    if config.getvalue("dist") != "loadgroup" or GROUPS_FILE not in os.environ:
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        groups: dict | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:  # read once, when the workers have collected
                self.groups = json.loads(Path(os.environ[GROUPS_FILE]).read_text())
            return self.groups.get(nodeid, nodeid)

    return GroupScheduling(config, log)


def _group_for_xdist(items) -> None:
    """Order ``items`` group by group (their ``xdist_group``), costliest groups first."""
    groups: dict[str, list] = {}
    for item in items:
        groups.setdefault(xdist_group(item), []).append(item)

    def cost(entry) -> tuple:
        group, members = entry
        if group in GROUP_ORDER:
            return (0, GROUP_ORDER.index(group))
        loads_default = any(member.get_closest_marker("default_model") for member in members)
        return (1 if loads_default else 2, -len(members))

    items[:] = [item for _, members in sorted(groups.items(), key=cost) for item in members]
    if GROUPS_FILE in os.environ:  # every worker collects the same: each writes the same file, whole or not at all
        path = Path(os.environ[GROUPS_FILE])
        tmp = path.with_name(f"{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps({item.nodeid: group for group, members in groups.items() for item in members}))
        os.replace(tmp, path)


def _selected_users(session, fixture: str) -> list:
    """The selected tests that use ``fixture`` (directly or through another fixture)."""
    return [item for item in session.items if fixture in getattr(item, "fixturenames", ())]


@pytest.fixture(scope="session", autouse=True)
def background_work(request) -> None:
    """Start, with the session, the work of ``BACKGROUND`` that a selected test needs: it runs in a process of its
    own (the kernel, a converter) while pytest runs the other tests, and its tests wait for it. Under xdist the
    other worker runs meanwhile: the work starts when its group's first test asks for it."""
    if xdist_workers():
        return
    for used, starts in BACKGROUND.items():
        if _selected_users(request.session, used):
            try:
                request.getfixturevalue(starts)
            except (Exception, pytest.skip.Exception, pytest.fail.Exception):
                pass  # kept by pytest: its own tests get the skip or the error when they ask for it


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory) -> dict:
    """``{arch: directory}`` of tiny random HF models (saved once per session)."""
    root = tmp_path_factory.mktemp("tiny-models")
    return {arch: save_tiny_model(arch, root / arch) for arch in ARCHITECTURES}


@pytest.fixture(scope="session")
def tiny_models(tiny_model_dirs) -> dict:
    """``{arch: layerscope.Model}`` loaded through ``load_model`` from the saved directories."""
    return {arch: layerscope.load_model(str(path)) for arch, path in tiny_model_dirs.items()}


@pytest.fixture(params=ARCHITECTURES)
def tiny(request, tiny_models):
    """Each tiny architecture in turn (a parametrized fixture)."""
    return tiny_models[request.param]


@pytest.fixture(scope="session")
def tiny_embeddinggemma_dir(tmp_path_factory) -> Path:
    """A tiny EmbeddingGemma-shaped sentence-transformers directory (``tests/tiny_embedding.py``), saved once."""
    from tiny_embedding import save_tiny_embeddinggemma

    return save_tiny_embeddinggemma(tmp_path_factory.mktemp("tiny-embeddinggemma"))


@pytest.fixture(scope="session")
def tiny_embeddinggemma(tiny_embeddinggemma_dir):
    """That directory loaded through ``load_embedder``."""
    from layerscope.models.embedding import load_embedder

    return load_embedder(tiny_embeddinggemma_dir)


@pytest.fixture(scope="session")
def tiny_quick_tour(tiny_model_dirs, tmp_path_factory):
    """A quick tour of the tiny llama, given by its directory so that the tour loads it (and times the load), run
    once per session: ``(result, directory)``. The tour, report and ``load_run`` tests read it; none writes in it."""
    from layerscope.experiments.tour import tour

    out = tmp_path_factory.mktemp("tiny-quick-tour")
    return tour(str(tiny_model_dirs["llama"]), out=out, quick=True), out


@pytest.fixture(scope="session")
def default_model():
    """The real default model (Gemma 3 270M), loaded once per session."""
    return layerscope.load_model()


@pytest.fixture(scope="session")
def full_tour(default_model, tmp_path_factory):
    """A full tour of the default model (16 prompts, every layer, the compare step against its MLX 8- and 4-bit
    re-quantizations), run once per session: its directory (``<step>/`` run directories and ``report.html``).
    The browser checks read its figures; the compare tests read its ``compare`` run."""
    from layerscope.experiments.tour import tour

    out = tmp_path_factory.mktemp("full-tour")
    result = tour(default_model, out=out)
    assert not result.failed, result.steps
    return out


# Run in a fresh process: VmHWM is that process's own peak (ru_maxrss would carry over pytest's peak across fork and
# exec); the base is taken after the imports, so the difference is the conversion's own.
_BFLOAT16_ENTRY = """
import torch, transformers, gguf, safetensors
from layerscope.checkpoints.default import default_model_path
from layerscope.models import gguf_cache
def hwm():  # -1 where there is no /proc (the conversion test runs on Linux only)
    try:
        status = open("/proc/self/status").read().splitlines()
    except OSError:
        return -1
    return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
source = default_model_path()
base = hwm()
entry, _ = gguf_cache.cached_gguf_dir(source, "bfloat16")
print(entry)
print(base, hwm())
"""


@dataclass(frozen=True)
class BFloat16Entry:
    """The default model's bfloat16 GGUF cache entry, written by ``cached_gguf_dir`` in a fresh process.

    Attributes:
        cache: the cache root it was written under (``$LAYERSCOPE_CACHE`` for the loads that should find it).
        entry: the entry's directory (``config.json``, safetensors in bfloat16, ``layerscope.json``).
        base: that process's peak resident memory after its imports, in bytes (Linux ``VmHWM``; -1 elsewhere).
        peak: its peak resident memory at the end, in bytes (-1 without ``/proc``).
    """

    cache: Path
    entry: Path
    base: int
    peak: int


@pytest.fixture(scope="session")
def bfloat16_conversion(tmp_path_factory):
    """The process that dequantizes the default model to bfloat16 into a fresh cache root (``cached_gguf_dir``,
    the cache's own path), started at once: ``(process, cache root)``. Killed at the end if still running."""
    cache = tmp_path_factory.mktemp("bfloat16-cache")
    env = {**os.environ, "LAYERSCOPE_CACHE": str(cache)}
    process = subprocess.Popen(
        [sys.executable, "-c", _BFLOAT16_ENTRY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    yield process, cache
    if process.poll() is None:
        process.kill()
        process.communicate()


@pytest.fixture(scope="session")
def default_bfloat16_cache(bfloat16_conversion) -> BFloat16Entry:
    """The default model dequantized to bfloat16 once per session (about 40 s on 2 cores, started with the session)
    in a process of its own that measures its peak memory. The conversion test reads the entry and the measured
    peak; the bfloat16 load test loads the default model from that cache root."""
    process, cache = bfloat16_conversion
    out, err = process.communicate(timeout=900)
    assert process.returncode == 0, err[-3000:]
    *_, entry, sizes = out.strip().splitlines()
    base, peak = map(int, sizes.split())
    return BFloat16Entry(cache, Path(entry), base, peak)


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven headless by Playwright (``tests/browser_checks.py``), launched once per session.
    Skipped where chromium is not installed, except in CI (``make test`` installs it)."""
    from browser_checks import CHROMIUM, CHROMIUM_ARGS

    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required for the browser tests in CI")
        pytest.skip("chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def notebook_kernel(tmp_path_factory):
    """One Jupyter kernel for the session's notebook tests (``tests/notebook_kernel.py``): a fresh namespace and
    working directory for each notebook, the models it loaded kept for the next."""
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from notebook_kernel import NotebookKernel

    kernel = NotebookKernel(tmp_path_factory.mktemp("notebook-kernel"))
    yield kernel
    kernel.shutdown()


@pytest.fixture(scope="session")
def notebook_runs(notebook_kernel, request, tmp_path_factory) -> dict:
    """``{path: future}``: every notebook a selected test reads (the test's ``path`` parameter), handed to the
    session's kernel when the session starts, in the tests' order, each in a working directory of its own; a
    future's result is the executed notebook, with its outputs. The kernel runs them while the other tests run."""
    import nbformat

    paths = dict.fromkeys(item.callspec.params["path"] for item in _selected_users(request.session, "notebook_runs"))
    return {
        path: notebook_kernel.submit(
            nbformat.read(path, as_version=4), tmp_path_factory.mktemp(f"notebook-{path.stem}") / "run"
        )
        for path in paths
    }
