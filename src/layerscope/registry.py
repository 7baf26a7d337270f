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

    def config_class(self) -> type:
        return getattr(importlib.import_module(self.module), self.config)

    def result_class(self) -> type:
        return getattr(importlib.import_module(self.module), self.result)


_E = "layerscope.experiments."

#: every experiment, in the order the command line lists them
ENTRIES: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry("tokens", _E + "tokens", "TokensConfig", "TokensResult", ("tokens",), sweep="cli"),
        Entry("layers", _E + "layers", "LayersConfig", "LayersResult", ("layers",), sweep="cli"),
        Entry("capture", _E + "capture", "CaptureConfig", "CaptureResult", ("residuals",), False, "python"),
        Entry("inspect", _E + "inspect", "InspectConfig", "InspectResult", ("inspect",), sweep="cli"),
        Entry("ablate", _E + "ablate", "AblateConfig", "AblateResult", ("ablate",), sweep="cli"),
        Entry("patch", _E + "patch", "PatchConfig", "PatchResult", ("patch",)),
        Entry("echo", _E + "echo", "EchoConfig", "EchoResult", ("echo",), sweep="cli"),
        Entry("layout", _E + "layout", "LayoutConfig", "LayoutResult", ("layout",)),
        Entry("encode", _E + "encode", "EncodeConfig", "EncodeResult", ("encode",), sweep="cli"),
        Entry("similar", _E + "encode", "SimilarConfig", "SimilarResult", ("similar",), sweep="cli"),
        Entry("stages", _E + "stages", "StagesConfig", "StagesResult", ("stages",), sweep="cli"),
        Entry("report", _E + "report", "ReportConfig", "ReportResult", ("report",)),
        Entry("tour", _E + "tour", "TourConfig", "TourResult"),
        Entry("compare", _E + "compare", "CompareConfig", "CompareResult", ("compare",)),
        Entry("sensitivity", _E + "sensitivity", "SensitivityConfig", "SensitivityResult", ("sensitivity",)),
        Entry("quantize", "layerscope.convert.quantize", "QuantizeConfig", "QuantizeResult", ("quantize",)),
        Entry("sweep", _E + "sweep", "SweepConfig", "SweepResult", ("sweep",)),
    )
}


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
