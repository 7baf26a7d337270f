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


# The floors, top to bottom: a module imports only from its own floor or the floors below it.
_FLOORS = {
    "cli": 5,
    "experiments": 4,
    "load_run": 4,
    **dict.fromkeys(("convert", "runner"), 3),
    **dict.fromkeys(("models", "capture", "analysis", "render", "checkpoints", "tokensets", "tasks"), 2),
    **dict.fromkeys(
        ("errors", "atomic", "cache", "fonts", "progress", "registry", "model_spec", "experiment", "rundir")
        + ("run_files", "user_files", "library_logs", "notebook", "lazy"),
        1,
    ),
}


def _runtime_arrows(path, root) -> list[tuple[str, str, int, bool]]:
    """``(from unit, to unit, line, inside a function)`` per ``layerscope`` import of a file, leaving out those
    under ``if TYPE_CHECKING:``. A unit is a subpackage (``models``) or a top-level module (``rundir``)."""
    import ast

    relative = path.relative_to(root).with_suffix("")
    parts = [p for p in relative.parts if p != "__init__"]
    package = ["layerscope", *(parts if path.name == "__init__.py" else parts[:-1])]
    source = parts[0] if parts else None
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for sub in ast.walk(node)
    }
    inside = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for sub in ast.walk(node)
        if sub is not node
    }
    arrows = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = [*base, *(node.module.split(".") if node.module else [])]
            names = [*target[1:2]] if len(target) > 1 else [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name.split(".")[1] for alias in node.names if alias.name.startswith("layerscope.")]
            target = ["layerscope"]
        else:
            continue
        if target[0] != "layerscope":
            continue
        arrows += [(source, name, node.lineno, id(node) in inside) for name in names if name in _FLOORS]
    return arrows


def test_every_import_arrow_points_down_the_floors_and_no_packages_import_each_other_in_a_circle():
    """cli -> experiments -> {convert, runner} -> {models, capture, analysis, render, checkpoints, tokensets, tasks} -> base
    modules: no import (at module level or inside a function) points up a floor, and the graph of packages has no
    circle (within a floor either)."""
    from graphlib import CycleError, TopologicalSorter
    from pathlib import Path

    import layerscope

    root = Path(layerscope.__file__).parent
    graph: dict[str, set[str]] = {}
    upward = []
    for path in sorted(root.rglob("*.py")):
        if path.parent == root and path.stem in ("__init__", "__main__"):
            continue  # the package's face: lazy names for everything
        for source, target, line, _ in _runtime_arrows(path, root):
            if source == target:
                continue
            graph.setdefault(source, set()).add(target)
            if _FLOORS[target] > _FLOORS[source]:
                upward.append(f"{path.relative_to(root)}:{line} -> {target}")
    assert not upward, upward
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        raise AssertionError(f"packages import each other in a circle: {' -> '.join(exc.args[1])}") from None


def test_analysis_and_render_never_import_torch_and_render_imports_no_experiment():
    """Checked in the source, functions included (the import test above only sees module level)."""
    import ast
    from pathlib import Path

    import layerscope

    root = Path(layerscope.__file__).parent
    for package in ("analysis", "render"):
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                modules = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom) and not node.level
                    else []
                )
                assert not any(m.split(".")[0] in ("torch", "transformers") for m in modules), (path, node.lineno)
    for path in sorted((root / "render").rglob("*.py")):
        arrows = _runtime_arrows(path, root)
        assert not [a for a in arrows if a[1] in ("experiments", "load_run", "cli", "convert")], path


#: the most ``layerscope`` imports that may sit inside functions: the boundaries with heavy libraries (torch,
#: plotly, matplotlib, pandas, ray, mlx, checkpoint readers) kept off ``import layerscope`` and ``--help``, and
#: the runner's loading of a model from its spec; any other import belongs at module level
_FUNCTION_LEVEL_IMPORTS = 106


def test_function_level_internal_imports_stay_at_the_heavy_boundaries():
    """Counted in the source (``TYPE_CHECKING`` blocks left out): a new internal import inside a function must
    replace one, or stand at module level."""
    from pathlib import Path

    import layerscope

    root = Path(layerscope.__file__).parent
    found = sorted(
        {
            f"{path.relative_to(root)}:{line}"
            for path in root.rglob("*.py")
            for *_, line, inside in _runtime_arrows(path, root)
            if inside
        }
    )
    assert len(found) <= _FUNCTION_LEVEL_IMPORTS, (len(found), found)
