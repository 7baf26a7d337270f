"""Shared fixtures: tiny random models of every architecture, a tiny sentence-embedding model, and the real default
model, a full tour of it and a headless chromium, each built once per session.

Tests come in two tiers. A test is marked ``slow`` when it needs the real default model (the ``default_model``
fixture or mark), a full tour, chromium, a local Ray instance or a Jupyter kernel (the fixtures in ``SLOW_FIXTURES``),
or when it is marked ``slow`` itself (the ones that start many processes). ``make check`` runs the rest
(``pytest -m "not slow"``); ``make test`` runs all of them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from tiny_models import ARCHITECTURES, save_tiny_model  # noqa: E402

import layerscope  # noqa: E402
from layerscope import progress  # noqa: E402

progress.set_enabled(False)

#: Fixtures whose tests go to the slow tier: the real default model, a full tour of it, chromium, Ray, a kernel.
SLOW_FIXTURES = frozenset({"default_model", "full_tour", "browser", "ray_instance", "notebook_kernel"})


def pytest_collection_modifyitems(config, items) -> None:
    """Mark ``slow`` every test that uses a fixture of ``SLOW_FIXTURES`` (directly or through another fixture) or
    is marked ``default_model``; a test that uses the ``default_model`` fixture is marked ``default_model`` too."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if "default_model" in used and item.get_closest_marker("default_model") is None:
            item.add_marker(pytest.mark.default_model)
        if used & SLOW_FIXTURES or item.get_closest_marker("default_model") is not None:
            item.add_marker(pytest.mark.slow)


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
