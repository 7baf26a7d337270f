"""``layerscope layout``: a checkpoint's tensor tree and totals, from headers only (seed 003).

No model is loaded and no tensor data is read: the headers of the ``.safetensors`` / ``.gguf`` files say
everything, including the memory a forward needs in each dtype (weights plus the capture buffers of
``--batch`` sequences of ``--seq-len`` tokens, see :func:`layerscope.checkpoints.layout.memory_estimate`). The run directory holds ``layout.txt``, ``layout.json``, ``layout.html`` (collapsible tree),
``treemap.html`` + ``treemap.plotly.json`` (where the parameters are) and ``run.json``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import write_text
from ..checkpoints import Layout, build_tree, read_layout, tree_lines
from ..checkpoints.default import default_model_path
from ..checkpoints.layout import DEFAULT_SEQ_LEN, MEMORY_DTYPES, ForwardMemory, memory_estimate
from ..checkpoints.tree import format_count
from ..errors import LayerscopeError
from ..experiment import ExperimentConfig, Result, option
from ..model_spec import ModelSpec
from ..render.layout_html import layout_page
from ..render.people import bytes_text
from ..render.treemap import Treemap
from ..runner import Caller, execute
from .findings import percent


@dataclass(frozen=True, kw_only=True)
class LayoutConfig(ExperimentConfig):
    """What ``layerscope layout`` lists.

    Attributes:
        source: a ``.safetensors`` / ``.gguf`` file, a sharded index, a directory, a cached hub id, or
            ``"default"`` (the default model's GGUF).
        fold: fold numbered blocks identical to an earlier one into one line (``--no-fold`` shows every one).
        json: the command line prints JSON instead of the indented tree.
        html: also write the collapsible page to this file.
        batch, seq_len: the forward the memory estimate is for: ``batch`` sequences of ``seq_len`` tokens.
    """

    experiment = "layout"

    source: str = option(
        positional=True,
        metavar="PATH_OR_ID",
        help="a .safetensors/.gguf file, an index, a directory, a cached hub id, or 'default'",
    )
    fold: bool = option(True, flag="--no-fold", help="show every layer, even identical ones")
    json: bool = option(False, help="print machine-readable JSON on stdout")
    html: str | None = option(None, flag="--html", metavar="FILE", help="also write a self-contained HTML page")
    batch: int = option(1, minimum=1, metavar="N", help="sequences per forward for the memory estimate (default 1)")
    seq_len: int = option(
        DEFAULT_SEQ_LEN, minimum=1, metavar="N", help="tokens per sequence for the memory estimate (default 128)"
    )

    def validate(self) -> None:
        super().validate()
        if not str(self.source).strip():
            raise self.error(
                "source", self.source, "is empty; give a checkpoint file, a directory, a hub id or 'default'"
            )
        if self.html is not None:
            if not str(self.html).strip():
                raise self.error("html", self.html, "is empty; give a file name for the page")
            if Path(self.html).expanduser().is_dir():
                raise self.error("html", self.html, "is a directory; give a file name for the page")

    def model_specs(self) -> tuple[ModelSpec, ...]:
        return ()  # headers only: no model is loaded

    def run(self, model=None) -> LayoutResult:
        return run_layout(self)


@dataclass(kw_only=True, repr=False)
class LayoutResult(Result):
    """A checkpoint's layout, ready to print, serialize or draw.

    Attributes:
        layout: the headers as read (:class:`layerscope.checkpoints.Layout`).
        tree: the folded tensor tree (list of node dicts, see :mod:`layerscope.checkpoints.tree`).
        memory: ``{dtype: ForwardMemory}``: what a forward needs in float32, bfloat16 and float16.
    """

    config: LayoutConfig
    layout: Layout
    tree: list[dict]
    memory: dict[str, ForwardMemory] = field(default_factory=dict)

    main_file = "layout.html"

    # ----- what the run directory holds ------------------------------------------------------------
    def figures(self) -> dict[str, Callable]:
        return {"treemap": self.figure}

    def images(self) -> dict[str, Callable]:
        return {"treemap": lambda: self.treemap().png()}

    def texts(self) -> dict[str, str]:
        return {"layout.txt": self.text() + "\n", "layout.json": self.json_text() + "\n", "layout.html": self.html()}

    def record(self) -> dict:
        totals = self.totals()
        return {
            "format": self.layout.format,
            "parameters": totals["parameters"],
            "tensors": totals["tensors"],
            "bytes": totals["bytes"],
            "forward_memory": {dtype: m.total for dtype, m in self.memory.items()},
            "findings": self.findings(),
        }

    def findings(self) -> dict[str, str]:
        """``{"treemap": sentence}``: the largest parts' share of the parameters; numbered blocks count as one
        part (``model.layers``, ``blk``)."""
        total = self.layout.n_parameters
        if not total:
            return {}
        parts: dict[str, int] = {}
        blocks: dict[str, set[str]] = {}
        for tensor in self.layout.tensors:
            names = tensor.name.split(".")
            numbered = next((i for i, piece in enumerate(names) if piece.isdigit()), None)
            head = names[: numbered if numbered is not None else len(names) - 1][:2] or names[:1]
            part = ".".join(head)
            count = 1
            for size in tensor.shape:
                count *= int(size)
            parts[part] = parts.get(part, 0) + count
            if numbered is not None:
                blocks.setdefault(part, set()).add(names[numbered])
        ranked = sorted(parts.items(), key=lambda item: -item[1])
        largest = [item for item in ranked[:3] if item[1] >= 0.01 * total] or ranked[:1]  # not "norm 0.0%"
        shown = ", ".join(
            f"{part}{f' ({len(blocks[part])} blocks)' if part in blocks else ''} {percent(n / total)}"
            for part, n in largest
        )
        return {"treemap": f"{format_count(total)} parameters; the largest parts: {shown}"}

    @classmethod
    def from_files(cls, config, tables, arrays, record, run_dir) -> LayoutResult:
        """A saved layout run (see :func:`layerscope.load_run`): the checkpoint's headers are read again."""
        try:
            result = run_layout(config)
        except (LayerscopeError, OSError) as exc:
            raise LayerscopeError(
                f"the layout run in {str(run_dir)!r} needs its checkpoint {config.source!r} to load back ({exc}); "
                "its layout.json and layout.txt hold what was read"
            ) from None
        result.models, result.timings = cls.saved(record)["models"], cls.saved(record)["timings"]
        return result

    def summary(self) -> list[str]:
        totals = self.totals()
        size = f"{bytes_text(totals['bytes'])} ({self.layout.format})"
        lines = [
            f"{format_count(totals['parameters'])} parameters in {format_count(totals['tensors'])} tensors, {size}"
        ]
        if self.memory:
            needs = ", ".join(f"{bytes_text(m.total)} in {dtype}" for dtype, m in self.memory.items())
            lines.append(f"a forward with every layer captured needs {needs}")
        return lines

    def headline(self) -> str:
        return f"{type(self).__name__}(layout of {self.layout.source})"

    def write_page(self, path: str | os.PathLike) -> Path:
        """Write :meth:`html` to ``path`` (atomically: a reader never sees half a page); returns the path."""
        return write_text(Path(path).expanduser(), self.html())

    def totals(self) -> dict:
        return {
            "tensors": len(self.layout.tensors),
            "stored_tensors": len(self.layout.entries),
            "parameters": self.layout.n_parameters,
            "bytes": self.layout.n_bytes,
            "by_dtype": self.layout.by_dtype(),
        }

    def to_dict(self) -> dict:
        """Everything as JSON-ready data: source, format, files, metadata, tree, totals."""
        meta = {k: v for k, v in self.layout.metadata.items() if isinstance(v, (str, int, float, bool))}
        return {
            "source": self.layout.source,
            "format": self.layout.format,
            "files": self.layout.files,
            "metadata": meta,
            "tree": self.tree,
            "totals": self.totals(),
            "forward_memory": {dtype: m.to_dict() for dtype, m in self.memory.items()},
        }

    def parameter_tree(self, depth: int = 4) -> tuple[list[str], list[str], list[str], list[int]]:
        """Parameter counts summed over name prefixes up to ``depth`` dots: ``(ids, labels, parents, values)``.

        The input of a treemap: ``model.layers.3.mlp`` holds the parameters of every tensor under it.
        """
        totals: dict[str, int] = {}
        for tensor in self.layout.tensors:
            count = 1
            for size in tensor.shape:
                count *= int(size)
            parts = tensor.name.split(".")
            for level in range(1, min(depth, len(parts)) + 1):
                prefix = ".".join(parts[:level])
                totals[prefix] = totals.get(prefix, 0) + count
        ids = sorted(totals, key=_natural)  # block 2 before block 10, each parent before its children
        labels = [i.rsplit(".", 1)[-1] for i in ids]
        parents = [i.rsplit(".", 1)[0] if "." in i else "" for i in ids]
        return ids, labels, parents, [totals[i] for i in ids]

    def treemap(self):
        """Where the parameters are, in block order, as one :class:`~layerscope.render.treemap.Treemap`."""
        depth = 4
        ids, labels, parents, values = self.parameter_tree(depth)
        counts = f"{format_count(len(self.layout.tensors))} tensors, {format_count(len(ids))} boxes"
        title = f"parameters of {os.path.basename(str(self.layout.source))}: {counts} (a box per name prefix, to {depth} parts)"
        return Treemap(title, ids, labels, parents, values)

    def figure(self):
        """A plotly treemap of where the parameters are (click a box to zoom in), blocks in order."""
        return self.treemap().plotly()

    def json_text(self) -> str:
        """:meth:`to_dict` as indented JSON (what ``layout --json`` prints)."""
        return json.dumps(self.to_dict(), indent=2, default=str)

    def html(self) -> str:
        """A self-contained HTML page: totals, then the tree with collapsible groups."""
        return layout_page(self.to_dict())

    def text(self) -> str:
        """The tree as indented lines, then the totals."""
        totals = self.totals()
        head = f"{self.layout.source}  ({self.layout.format}, {len(self.layout.files)} file(s))"
        lines = [head, *tree_lines(self.tree), ""]
        lines.append(
            f"total: {format_count(totals['parameters'])} parameters in {format_count(totals['tensors'])} tensors, "
            f"{bytes_text(totals['bytes'])}"
        )
        for dtype, row in totals["by_dtype"].items():
            lines.append(
                f"  {dtype}: {row['tensors']} tensors, {format_count(row['elements'])} elements, {bytes_text(row['bytes'])}"
            )
        lines += self.memory_lines()
        return "\n".join(lines)

    def memory_lines(self) -> list[str]:
        """The memory a forward needs per dtype, one line each (empty without an estimate)."""
        if not self.memory:
            return []
        first = next(iter(self.memory.values()))
        lines = [f"forward memory (batch {first.batch} x {first.seq_len} tokens, every layer captured):"]
        width = max(len(dtype) for dtype in self.memory) + 1
        for dtype, m in self.memory.items():
            lines.append(
                f"  {dtype + ':':<{width}} {bytes_text(m.total)} = {bytes_text(m.weights)} weights + "
                f"{bytes_text(m.buffers)} buffers (residuals {bytes_text(m.residuals)}, one block "
                f"{bytes_text(m.activations)}, logits {bytes_text(m.logits)})"
            )
        return lines


def _natural(name: str) -> list:
    """``model.layers.10`` after ``model.layers.2``: the dotted parts, numbers compared as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in name.split(".")]


def run_layout(config: LayoutConfig) -> LayoutResult:
    """Read the headers of ``config.source`` and build the tree; no files written."""
    source = config.source
    if str(source) == "default":
        source = default_model_path()
    start = time.perf_counter()
    found = read_layout(source)
    tree = build_tree(found.tensors, fold=config.fold)
    memory = {
        dtype: memory_estimate(found, dtype, batch=config.batch, seq_len=config.seq_len) for dtype in MEMORY_DTYPES
    }
    timings = {"compute": time.perf_counter() - start}
    return LayoutResult(config=config, layout=found, tree=tree, memory=memory, timings=timings)


def layout(
    source: str | os.PathLike,
    *,
    fold: bool = True,
    html: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    batch: int = 1,
    seq_len: int = DEFAULT_SEQ_LEN,
) -> LayoutResult:
    """The layout of a checkpoint: file, sharded index, directory, GGUF, cached hub id, or ``"default"``
    (the default model's GGUF); no weights read.

    Args:
        fold: fold numbered blocks identical to an earlier one.
        html: also write the collapsible page to this file.
        out: also write the run directory there.
        batch, seq_len: the forward ``result.memory`` (and the text's last lines) are for.

    Example:
        >>> result = layerscope.layout("model.safetensors")
        >>> print(result.text())          # the tree and totals
        >>> result.to_dict()["totals"]["parameters"]
        268098176
        >>> result.figure()               # the parameter treemap (plotly)
    """
    config = LayoutConfig(
        source=os.fspath(source),
        fold=fold,
        html=None if html is None else os.fspath(html),
        batch=batch,
        seq_len=seq_len,
    )
    return execute_layout(config, out=out)


def execute_layout(
    config: LayoutConfig, out: str | os.PathLike | None = None, via: Caller = "python", force: bool = False
) -> LayoutResult:
    """:func:`~layerscope.runner.execute`, then the page ``config.html`` names (the Python API and the CLI)."""
    result = execute(config, out=out, via=via, force=force)
    if config.html is not None:
        result.write_page(config.html)
    return result


#: the former name of :class:`LayoutResult`
LayoutReport = LayoutResult
