"""The report's reading of one run directory: a :class:`~layerscope.render.section.Section` of what it shows.

Each run directory becomes a section: its interactive figures (the ``*.plotly.json`` specs written beside every
HTML figure), each with the sentence its experiment wrote about it (``findings`` in ``run.json``), key numbers
from ``run.json`` formatted for people, the head of its CSV tables, and the command that reproduces it.

Files are read through :class:`~layerscope.run_files.RunFiles`: only regular files directly inside a run
directory, each with a single hard link; a link that leads out of it, a hard-linked file, a FIFO, a device or a
socket is skipped with a warning (never opened), and so is a file over :data:`MAX_FILE_BYTES`, one past the
page's :data:`REPORT_BUDGET_BYTES`, and a figure spec that is not valid, bounded JSON. Every value placed in the
page is escaped, and every part of a figure spec that would reach the network is left out (see
:mod:`layerscope.render.offline_spec`).

Example:
    >>> section = read_section("runs/tour/tokens")
    >>> section.title
    'tokens: gemma-3-270m'
"""

from __future__ import annotations

import base64
import io
import json
import os
import shlex
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..errors import LayerscopeError
from ..render.offline_spec import offline_spec
from ..render.people import is_positive, value_display
from ..render.section import Section
from ..run_files import MAX_JSON_BYTES, ReadBudget, RunFiles, check_csv_columns, parse_json

# Figures and tables in the order a reader meets them; files not listed follow alphabetically.
_FIGURE_ORDER = (
    "index", "heatmap", "logit_lens", "layers", "metrics", "accuracy", "echo", "treemap", "cka", "errors", "agreement",
)  # fmt: skip
_TABLE_ROWS = 25
# run.json keys that are bookkeeping, not key numbers.
_BOOKKEEPING = {
    "experiment", "created", "command", "config", "models", "versions", "timings_s", "files", "table_dtypes",
    "findings",
}  # fmt: skip
#: the largest file the report reads from a run directory (a bigger one is skipped with a warning)
MAX_FILE_BYTES = 64 << 20
#: what one page reads from all its run directories together (past it, files are skipped with a warning)
REPORT_BUDGET_BYTES = 256 << 20
#: a CSV table up to this size is parsed whole (for its head and row count); a larger one a chunk at a time
_WHOLE_CSV_BYTES = 4 << 20
#: the characters of a ``.md`` / ``.txt`` output shown
_TEXT_SHOWN = 60_000
#: what :meth:`_RunFiles.json` gives for a file it skipped (``None`` is JSON's null)
_SKIPPED = object()
_SPEC = ".plotly.json"


# ----- reading a run directory safely --------------------------------------------------------------------------


class _RunFiles:
    """The report's view of one run directory: its files read through :class:`~layerscope.run_files.RunFiles`
    (regular files inside it, a single hard link, within caps and the report's shared budget); a file that is
    not read is skipped with a warning."""

    def __init__(self, run_dir: Path, *, budget: ReadBudget | None = None, quiet: bool = False):
        self.run_dir = run_dir
        self.quiet = quiet
        self.skipped: list[str] = []
        self.reader = RunFiles(
            run_dir, budget=budget if budget is not None else ReadBudget(REPORT_BUDGET_BYTES), single_link=True
        )
        self.files = self.reader.files
        for name, why in self.reader.refused.items():
            self._skip(name, why)

    def _skip(self, name: str, why: str) -> None:
        self.skipped.append(f"{name}: {why}")
        if not self.quiet and name != "run.json":  # a run.json not read is an error (see read_section)
            warnings.warn(f"report: skipped {str(self.run_dir / name)!r}: {why}", stacklevel=3)

    def removed(self, name: str, parts: list[str]) -> None:
        """Say which parts of the figure spec ``name`` were left out because they would reach the network."""
        more = f" and {len(parts) - 3} more" if len(parts) > 3 else ""
        what = f"{', '.join(parts[:3])}{more}: they would reach the network when the page opens"
        self.skipped.append(f"{name}: left out {what}")
        if not self.quiet:
            warnings.warn(f"report: left out of {str(self.run_dir / name)!r}: {what}", stacklevel=3)

    def named(self, suffix: str) -> list[str]:
        return self.reader.named(suffix)

    def read(self, name: str, limit: int = MAX_FILE_BYTES, *, head: bool = False) -> bytes | None:
        """The bytes of ``name`` (at most ``limit``; with ``head``, its first ``limit`` bytes), or None (skipped)."""
        try:
            return self.reader.read(name, limit, head=head)
        except LayerscopeError as exc:
            self._refused(name, exc)
            return None

    def json(self, name: str):
        """``name`` as bounded JSON (``NaN`` and ``Infinity`` read as null: not JSON to a browser), or
        :data:`_SKIPPED`."""
        data = self.read(name, MAX_JSON_BYTES)
        if data is None:
            return _SKIPPED
        try:
            return parse_json(data, self.reader.label(name), constants=lambda _: None)
        except LayerscopeError as exc:
            self._refused(name, exc, "not a valid plotly figure spec")
            return _SKIPPED

    def _refused(self, name: str, exc: LayerscopeError, why: str | None = None) -> None:
        if name == "run.json":
            raise exc
        prefix = self.reader.label(name) + ": "
        self._skip(name, why or str(exc).removeprefix(prefix))

    def text(self, name: str, limit: int = MAX_FILE_BYTES) -> str | None:
        """The first ``limit`` bytes of ``name`` as text (bad UTF-8 shown as U+FFFD), or None."""
        data = self.read(name, limit, head=True)
        return None if data is None else data.decode("utf-8", errors="replace")


def _ordered(names: list[str], stem_of) -> list[str]:
    def key(name: str):
        stem = stem_of(name)
        return (_FIGURE_ORDER.index(stem) if stem in _FIGURE_ORDER else len(_FIGURE_ORDER), stem)

    return sorted(names, key=key)


def _command(record: dict, run_dir: Path) -> str:
    argv = record.get("command")
    if isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv):
        return "layerscope " + shlex.join(argv[1:])
    name = {"capture": "residuals"}.get(str(record.get("experiment")), record.get("experiment", "?"))
    return f"(made from Python: layerscope.{name}(...), config in {run_dir / 'run.json'})"


def _figure_spec(spec: object) -> tuple[str, list[str]] | None:
    """The spec as compact JSON when it is a plotly figure (an object with a ``data`` list), with every part that
    would reach the network removed (and listed); else None."""
    if not isinstance(spec, dict) or not isinstance(spec.get("data"), list):
        return None
    if not isinstance(spec.get("layout", {}), dict) or not isinstance(spec.get("frames", []), list):
        return None
    if not all(isinstance(trace, dict) for trace in spec["data"]):
        return None
    removed = offline_spec(spec)
    return json.dumps(spec, separators=(",", ":"), ensure_ascii=False), removed


# ----- one section ------------------------------------------------------------------------------------------------


def read_section(run_dir: str | Path, budget: ReadBudget | None = None) -> Section:
    """Read one run directory into a :class:`Section` (only regular files inside it; see the module).

    ``budget``: the bytes this section may still read, shared by the sections of one page (default: a fresh
    :data:`REPORT_BUDGET_BYTES`)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LayerscopeError(f"{str(run_dir)!r} is not a layerscope run directory: it has no run.json")
    files = _RunFiles(run_dir, budget=budget)
    record_path = run_dir / "run.json"
    if "run.json" not in files.files:
        reason = next((s.split(": ", 1)[1] for s in files.skipped if s.startswith("run.json: ")), None)
        why = f"its run.json is {reason}" if reason else "it has no run.json"
        raise LayerscopeError(f"{str(run_dir)!r} is not a layerscope run directory: {why}")
    try:
        record = files.json("run.json")
    except LayerscopeError as exc:
        why = str(exc).removeprefix(files.reader.label("run.json") + ": ")
        raise LayerscopeError(f"cannot read {str(record_path)!r}: {why}") from None
    if not isinstance(record, dict):
        raise LayerscopeError(f"cannot read {str(record_path)!r}: it holds no JSON object")
    experiment = str(record.get("experiment", "run"))
    models = record.get("models") if isinstance(record.get("models"), list) else []
    names = ", ".join(str(m.get("name", "?")) for m in models if isinstance(m, dict)) or "no model"
    section = Section(
        name=run_dir.name,
        experiment=experiment,
        title=f"{experiment}: {names}",
        command=_command(record, run_dir),
        created=str(record.get("created") or ""),
    )
    for key, value in record.items():
        if key not in _BOOKKEEPING:
            shown = value_display(str(key), value)
            if shown is not None:
                section.numbers[str(key).replace("_", " ")] = shown
    timings = record.get("timings_s")
    if isinstance(timings, dict):
        section.timings = {str(k): float(v) for k, v in timings.items() if is_positive(v)}
    findings = record.get("findings")
    if isinstance(findings, dict):
        section.findings = {str(k): str(v) for k, v in findings.items() if isinstance(v, str) and v}
    for name in _ordered(files.named(_SPEC), lambda n: n[: -len(_SPEC)]):
        spec = files.json(name)
        shown = None if spec is _SKIPPED else _figure_spec(spec)
        if shown is None:
            if spec is not _SKIPPED:
                files._skip(name, "not a valid plotly figure spec")
            continue
        text, removed = shown
        if removed:
            files.removed(name, removed)
        section.figures.append((name[: -len(_SPEC)], text))
    if not section.figures:
        for name in files.named(".png"):
            data = files.read(name)
            if data is not None:
                section.images.append((name, base64.b64encode(data).decode()))
    for name in sorted([*files.named(".md"), *files.named(".txt")]):
        text = files.text(name, _TEXT_SHOWN * 4)  # UTF-8: at most 4 bytes a character
        if text is not None:
            section.texts.append((name, text if len(text) <= _TEXT_SHOWN else text[:_TEXT_SHOWN] + "\n..."))
    for name in _ordered(files.named(".csv"), lambda n: n[: -len(".csv")]):
        data = files.read(name)
        if data is None:
            continue
        table = _table_head(data)
        if table is None:
            files._skip(name, "not a readable CSV table")
            continue
        section.tables.append((name, *table))
    section.skipped = list(files.skipped)
    return section


def _table_head(data: bytes) -> tuple[str, int] | None:
    """The first rows of a CSV table as an HTML table, and how many rows it has; None when it is not one."""
    try:
        check_csv_columns(data, "table")
        if len(data) <= _WHOLE_CSV_BYTES:
            frame = pd.read_csv(io.BytesIO(data), encoding_errors="replace")  # a lone surrogate: shown as U+FFFD
            frame, rows = frame.head(_TABLE_ROWS), len(frame)
        else:  # the head, and the rows counted a chunk at a time: memory stays bounded
            frame = pd.read_csv(io.BytesIO(data), nrows=_TABLE_ROWS, encoding_errors="replace")
            chunks = pd.read_csv(io.BytesIO(data), dtype=str, chunksize=20_000, encoding_errors="replace")
            rows = sum(len(chunk) for chunk in chunks)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OverflowError):
        return None
    html = frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, classes="data", escape=True)
    return html, rows


def tour_load_seconds(run_dirs: Sequence[Path], sections: Sequence[Section]) -> float | None:
    """The model load time of the tour that wrote ``run_dirs``: all in one folder whose ``run.json`` is a tour's,
    written after every run (an older record belongs to another tour); else None."""
    parents = {os.path.realpath(Path(d).parent) for d in run_dirs}
    if len(parents) != 1 or not sections or not all(s.created for s in sections):
        return None
    try:
        record = _RunFiles(Path(next(iter(parents))), quiet=True).json("run.json")
    except LayerscopeError:
        return None
    if not isinstance(record, dict) or record.get("experiment") != "tour":
        return None
    created = record.get("created")
    if not isinstance(created, str) or created < max(s.created for s in sections):
        return None
    timings = record.get("timings_s")
    load = timings.get("load") if isinstance(timings, dict) else None
    return float(load) if is_positive(load) else None
