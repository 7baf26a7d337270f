"""Shared fixtures: tiny random models of every architecture, and the real default model once per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from tiny_models import ARCHITECTURES, save_tiny_model  # noqa: E402

import layerscope  # noqa: E402
from layerscope import progress  # noqa: E402

progress.set_enabled(False)


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
