"""The one list of experiments: the command line, the package's names, ``layerscope.experiments``, ``load_run``,
``sweep`` and the report all read it.

Each :class:`Entry` names where an experiment lives as text, so reading the list imports nothing heavy; its
config and result classes load on first use (:meth:`Entry.config_class`, :meth:`Entry.result_class`).

Example:
    >>> ENTRIES["tokens"].config_class().__name__
    'TokensConfig'
    >>> [e.name for e in swept("cli")]
    ['tokens', 'layers', 'inspect', 'ablate', 'echo']
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal

Sweep = Literal["cli", "python"]


@dataclass(frozen=True)
class Entry:
    """One experiment.

    Attributes:
        name: ``run.json``'s ``experiment`` and the command's name (``layerscope <name>``).
        module: the module holding its config, result and Python function.
        config, result: the names of its config and result classes in ``module`` (None: not yet declared).
        config_module: the light module declaring the config (default ``module``; ``"_config"``:
            ``<module>_config``): it imports no torch, transformers or pandas, so the command line builds its
            options, answers ``--help`` and refuses a bad value before any model code loads.
        functions: the Python faces ``layerscope.<function>`` exported from ``module``.
        command: False for a Python-only experiment (no ``layerscope <name>``).
        sweep: ``"cli"``: ``layerscope sweep <name>`` and ``layerscope.sweep(<name>)``; ``"python"``: only the
            latter; None: not swept over models.
    """

    name: str
    module: str
    config: str | None
    result: str | None
    functions: tuple[str, ...] = ()
    command: bool = True
    sweep: Sweep | None = None
    config_module: str | None = None

    def config_class(self) -> type:
        return getattr(importlib.import_module(self.config_path()), self.config)

    def config_path(self) -> str:
        """The module declaring the config: ``config_module``, where ``"_config"`` means ``<module>_config``."""
        if self.config_module == _L:
            return self.module + _L
        return self.config_module or self.module

    def result_class(self) -> type:
        return getattr(importlib.import_module(self.module), self.result)


_E = "layerscope.experiments."
#: ``config_module`` for a config declared in ``<module>_config``
_L = "_config"

#: every experiment, in the order the command line lists them; a config in a light ``*_config`` module
# fmt: off
ENTRIES: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry("tokens", _E + "tokens", "TokensConfig", "TokensResult", ("tokens",), sweep="cli", config_module=_L),
        Entry("layers", _E + "layers", "LayersConfig", "LayersResult", ("layers",), sweep="cli", config_module=_L),
        Entry("capture", _E + "capture", "CaptureConfig", "CaptureResult", ("residuals",), False, "python",
              config_module=_L),
        Entry("inspect", _E + "inspect", "InspectConfig", "InspectResult", ("inspect",), sweep="cli", config_module=_L),
        Entry("ablate", _E + "ablate", "AblateConfig", "AblateResult", ("ablate",), sweep="cli", config_module=_L),
        Entry("patch", _E + "patch", "PatchConfig", "PatchResult", ("patch",), config_module=_L),
        Entry("echo", _E + "echo", "EchoConfig", "EchoResult", ("echo",), sweep="cli", config_module=_L),
        Entry("layout", _E + "layout", "LayoutConfig", "LayoutResult", ("layout",)),
        Entry("encode", _E + "encode", "EncodeConfig", "EncodeResult", ("encode",), sweep="cli", config_module=_L),
        Entry("similar", _E + "encode", "SimilarConfig", "SimilarResult", ("similar",), sweep="cli", config_module=_L),
        Entry("stages", _E + "stages", "StagesConfig", "StagesResult", ("stages",), sweep="cli", config_module=_L),
        Entry("report", _E + "report", "ReportConfig", "ReportResult", ("report",), config_module=_L),
        Entry("tour", _E + "tour", "TourConfig", "TourResult"),
        Entry("compare", _E + "compare", "CompareConfig", "CompareResult", ("compare",), config_module=_L),
        Entry("sensitivity", _E + "sensitivity", "SensitivityConfig", "SensitivityResult", ("sensitivity",),
              config_module=_L),
        Entry("quantize", "layerscope.convert.quantize", "QuantizeConfig", "QuantizeResult", ("quantize",)),
        Entry("sweep", _E + "sweep", "SweepConfig", "SweepResult", ("sweep",), config_module=_E + "sweep.config"),
    )
}
# fmt: on


def entry(name: str) -> Entry | None:
    return ENTRIES.get(name)


def reopened() -> list[str]:
    """The experiments whose run directories :func:`~layerscope.load_run` reopens."""
    return [e.name for e in ENTRIES.values() if e.result is not None]


def swept(where: Sweep) -> list[Entry]:
    """The experiments a sweep runs: from the command line (``"cli"``) or from Python (``"python"``, all of them)."""
    return [e for e in ENTRIES.values() if e.sweep == "cli" or (where == "python" and e.sweep == "python")]


def functions() -> dict[str, tuple[str, str]]:
    """``{public name: (module, attribute)}`` of every experiment's Python face (``layerscope.tokens``, ...)."""
    return {function: (e.module, function) for e in ENTRIES.values() for function in e.functions}


def submodules() -> tuple[str, ...]:
    """The modules of ``layerscope.experiments`` that hold experiments (``tokens``, ``sweep``, ...)."""
    names = (e.module.removeprefix(_E) for e in ENTRIES.values() if e.module.startswith(_E))
    return tuple(dict.fromkeys(names))
