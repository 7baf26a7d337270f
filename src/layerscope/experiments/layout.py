"""``layerscope layout``: a checkpoint's tensor tree and totals, from headers only (seed 003)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..checkpoints import Layout, build_tree, read_layout, tree_lines
from ..checkpoints.tree import format_count


@dataclass
class LayoutReport:
    """A checkpoint's layout, ready to print, serialize or draw.

    Attributes:
        layout: the headers as read (:class:`layerscope.checkpoints.Layout`).
        tree: the folded tensor tree (list of node dicts, see :mod:`layerscope.checkpoints.tree`).
    """

    layout: Layout
    tree: list[dict]

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
        ids = list(totals)
        labels = [i.rsplit(".", 1)[-1] for i in ids]
        parents = [i.rsplit(".", 1)[0] if "." in i else "" for i in ids]
        return ids, labels, parents, [totals[i] for i in ids]

    def figure(self):
        """A plotly treemap of where the parameters are (click a box to zoom in)."""
        from ..render.layout_html import parameter_treemap

        ids, labels, parents, values = self.parameter_tree()
        return parameter_treemap(ids, labels, parents, values, f"parameters of {os.path.basename(str(self.layout.source))}")

    def html(self) -> str:
        """A self-contained HTML page: totals, then the tree with collapsible groups."""
        from ..render.layout_html import layout_page

        return layout_page(self.to_dict())

    def text(self) -> str:
        """The tree as indented lines, then the totals."""
        totals = self.totals()
        head = f"{self.layout.source}  ({self.layout.format}, {len(self.layout.files)} file(s))"
        lines = [head, *tree_lines(self.tree), ""]
        lines.append(
            f"total: {format_count(totals['parameters'])} parameters in {format_count(totals['tensors'])} tensors, "
            f"{human_bytes(totals['bytes'])}"
        )
        for dtype, row in totals["by_dtype"].items():
            lines.append(
                f"  {dtype}: {row['tensors']} tensors, {format_count(row['elements'])} elements, {human_bytes(row['bytes'])}"
            )
        return "\n".join(lines)


    def save(self, out: str | os.PathLike) -> Path:
        """Write a run directory: ``layout.txt``, ``layout.json``, ``layout.html``, ``treemap.html``, ``run.json``."""
        from ..atomic import write_json, write_text
        from ..render.scatter import write_html
        from ..rundir import write_run_json

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "layout.txt", self.text() + "\n")
        write_json(out / "layout.json", self.to_dict())
        write_text(out / "layout.html", self.html())
        write_html(self.figure(), out / "treemap.html")
        totals = self.totals()
        write_run_json(
            out, "layout", {"source": str(self.layout.source), "format": self.layout.format}, [], {},
            parameters=totals["parameters"], tensors=totals["tensors"], bytes=totals["bytes"],
        )
        return out


def human_bytes(n: int) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def layout(source: str | os.PathLike, *, fold: bool = True) -> LayoutReport:
    """The layout of a checkpoint: file, sharded index, directory, GGUF, cached hub id, or ``"default"``
    (the default model's GGUF); no weights read.

    Example:
        >>> report = layout("model.safetensors")
        >>> print(report.text())          # the tree and totals
        >>> report.to_dict()["totals"]["parameters"]
        268098176
    """
    if str(source) == "default":
        from ..models.default import default_model_path

        source = default_model_path()
    found = read_layout(source)
    return LayoutReport(layout=found, tree=build_tree(found.tensors, fold=fold))
