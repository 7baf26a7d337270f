"""The registry is the one list of experiments: the package's names, ``layerscope.experiments`` and the command
line all follow it."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import layerscope
import layerscope.experiments
from layerscope.cli.main import build_parser, command_names
from layerscope.registry import ENTRIES, functions


def test_every_python_face_is_a_package_name():
    for name, (module, attribute) in functions().items():
        assert getattr(layerscope, name) is getattr(importlib.import_module(module), attribute)
        assert name in layerscope.__all__ and name in dir(layerscope)


def test_the_type_checking_imports_are_the_lazy_names():
    """``if TYPE_CHECKING:`` in ``layerscope/__init__.py`` names what ``_LAZY`` loads, from the same modules."""
    tree = ast.parse(Path(layerscope.__file__).read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    imported = {
        alias.name: "layerscope." + node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    lazy = {name: module for name, (module, _) in layerscope._LAZY.items()}
    assert {name: module for name, module in imported.items() if name != "load_run"} == lazy


def test_every_experiment_is_under_layerscope_experiments():
    for name, entry in ENTRIES.items():
        module = getattr(layerscope.experiments, name)
        assert module.__name__ == entry.module
        for function in entry.functions:
            assert hasattr(module, function)
        if entry.config is not None:
            assert entry.config_class().experiment == name


def test_the_command_line_lists_every_experiment_with_a_command():
    commands = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction").choices
    assert list(commands) == command_names()
    assert [n for n in command_names() if n in ENTRIES] == [e.name for e in ENTRIES.values() if e.command]
