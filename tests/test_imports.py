"""``import layerscope`` is light and changes nothing process-wide."""

from __future__ import annotations

import subprocess
import sys

_BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'transformers'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_layerscope_analysis_and_render_import_without_torch():
    code = (
        _BLOCK_TORCH
        + """
import layerscope, layerscope.analysis, layerscope.render
import layerscope.render.scatter, layerscope.render.static, layerscope.render.palette
import layerscope.model_spec, layerscope.experiment, layerscope.runner, layerscope.rundir
for module in list(layerscope.analysis.__dict__):
    pass
import pkgutil, importlib
for pkg in (layerscope.analysis, layerscope.render):
    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(pkg.__name__ + '.' + info.name)
assert 'torch' not in sys.modules
print('ok')
"""
    )
    done = _run(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_no_backend_switch_and_no_logging_change_at_import():
    code = """
import logging, matplotlib
matplotlib.use('svg')
before = (matplotlib.get_backend(), logging.root.level, dict(logging.Logger.manager.loggerDict).keys() and
          {n: l.level for n, l in logging.Logger.manager.loggerDict.items() if isinstance(l, logging.Logger)})
import layerscope, layerscope.render.static, layerscope.render.layer_grid
import layerscope.experiments.tokens
after = (matplotlib.get_backend(), logging.root.level,
         {n: l.level for n, l in logging.Logger.manager.loggerDict.items() if isinstance(l, logging.Logger) and n in before[2]})
assert before[0] == after[0], (before[0], after[0])
assert before[1] == after[1]
assert all(after[2][n] == before[2][n] for n in after[2])
print('ok')
"""
    done = _run(code)
    assert done.returncode == 0, done.stderr


def test_the_top_level_api_shadows_no_subpackage():
    code = """
import layerscope
import layerscope.capture.engine
import layerscope.experiments
assert callable(layerscope.experiments.layout.layout)
for name in ('tokens', 'layers', 'residuals', 'inspect', 'ablate', 'echo', 'encode', 'similar', 'stages',
             'layout', 'report', 'load_model', 'Model', 'ModelSpec', 'execute'):
    assert getattr(layerscope, name) is not None, name
import layerscope.capture
assert hasattr(layerscope.capture, 'capture_residuals')
print('ok')
"""
    done = _run(code)
    assert done.returncode == 0, done.stderr


def _internal_imports(module_path) -> set[str]:
    """The ``layerscope`` modules a file imports (module level and inside functions), as dotted names."""
    import ast

    from layerscope import __file__ as root_file

    root = __import__("pathlib").Path(root_file).parent
    package = ".".join(("layerscope", *module_path.relative_to(root).parent.parts))
    found = set()
    for node in ast.walk(ast.parse(module_path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base) if node.level else node.module or ""
            if target.startswith("layerscope"):
                found |= {f"{target}.{alias.name}" for alias in node.names} | {target}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("layerscope")}
    return found


def test_checkpoints_reads_headers_and_nothing_below_convert_imports_it():
    """``checkpoints/`` imports only itself and ``errors``; the writers and
    converters of ``convert/`` are imported by no package they sit above."""
    from pathlib import Path

    import layerscope

    root = Path(layerscope.__file__).parent
    allowed = ("layerscope.checkpoints", "layerscope.errors")
    for path in sorted((root / "checkpoints").glob("*.py")):
        outside = {m for m in _internal_imports(path) if not m.startswith(allowed) and m != "layerscope"}
        assert not outside, (path.name, sorted(outside))
    below = ("checkpoints", "models", "capture", "analysis", "render", "tokensets", "tasks")
    for package in below:
        for path in sorted((root / package).rglob("*.py")):
            assert not {m for m in _internal_imports(path) if m.startswith("layerscope.convert")}, path
