"""The tensor tree: names split on dots, groups with child counts, identical numbered blocks folded.

A tree node is a plain dict (ready for ``--json``):

- group:  ``{"name": "model.layers", "count": 24, "children": [...]}``
- tensor: ``{"name": "dense.0", "shape": [3072, 768], "dtype": "U32+F16", "quant": "affine 8-bit g64",
  "bytes": 2408448, "parts": [{"name": "dense.0.weight", "shape": [3072, 192], "dtype": "U32"}, ...]}``
- fold:   ``{"name": "model.layers.1-23", "same_as": "model.layers.0", "count": 23}``
"""

from __future__ import annotations

import re

from .entries import LogicalTensor

THIN_SPACE = "\u2009"


class _Node:
    __slots__ = ("name", "children", "tensor")

    def __init__(self, name: str):
        self.name = name
        self.children: dict[str, _Node] = {}
        self.tensor: LogicalTensor | None = None

    def tensors(self):
        if self.tensor is not None:
            yield self.tensor
        for child in self.children.values():
            yield from child.tensors()


def build_tree(tensors: list[LogicalTensor], fold: bool = True) -> list[dict]:
    """The top-level nodes of the tree of ``tensors`` (see the module docstring for the node format).

    Example:
        >>> [node["name"] for node in build_tree(layout.tensors)]
        ['dense', 'model']
    """
    root = _Node("")
    for tensor in tensors:
        node = root
        for part in tensor.name.split("."):
            node = node.children.setdefault(part, _Node(f"{node.name}.{part}" if node.name else part))
        node.tensor = tensor
    return _children(root, fold)


def _sort_key(key: str):
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", key) if p]


def _children(node: _Node, fold: bool) -> list[dict]:
    """Render the children in natural order; a numbered child whose subtree matches an earlier one
    (names relative to it, shapes, dtypes, quantization) is folded, consecutive folds into one line."""
    out: list[dict] = []
    seen: dict[tuple, str] = {}  # signature -> name of the first child that had it
    for key in sorted(node.children, key=_sort_key):
        child = node.children[key]
        if fold and key.isdigit():
            sig = _signature(child)
            if sig in seen:
                last = out[-1] if out else {}
                if last.get("same_as") == seen[sig] and last.get("last") == int(key) - 1:
                    last["count"] += 1
                    last["last"] = int(key)
                    first = last["first"]
                    last["name"] = _join(node.name, f"{first}-{key}")
                else:
                    out.append(
                        {
                            "name": _join(node.name, key),
                            "same_as": seen[sig],
                            "count": 1,
                            "first": int(key),
                            "last": int(key),
                        }
                    )
                continue
            seen[sig] = child.name
        out.append(_render(child, fold))
    return out


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _signature(node: _Node) -> tuple:
    prefix = node.name + "."
    return tuple(sorted(t.signature(prefix) for t in node.tensors()))


def _render(node: _Node, fold: bool) -> dict:
    if node.tensor is not None and not node.children:
        return tensor_dict(node.tensor)
    if node.tensor is None and len(node.children) == 1:
        (only,) = node.children.values()
        if only.tensor is not None and not only.children:
            return tensor_dict(only.tensor)
    children = _children(node, fold)
    if node.tensor is not None:
        children.insert(0, tensor_dict(node.tensor))
    return {"name": node.name, "count": len(node.children) + (node.tensor is not None), "children": children}


def tensor_dict(tensor: LogicalTensor) -> dict:
    row = {
        "name": tensor.name,
        "shape": list(tensor.shape),
        "dtype": tensor.dtype,
        "quant": tensor.quant,
        "bytes": tensor.nbytes,
    }
    if len(tensor.parts) > 1:
        row["parts"] = [{"name": p.name, "shape": list(p.shape), "dtype": p.dtype} for p in tensor.parts]
    return row


def format_count(n: int, sep: str = THIN_SPACE) -> str:
    """``262144`` -> ``'262 144'`` (thin space between thousands)."""
    return f"{n:,}".replace(",", sep)


def format_shape(shape, sep: str = THIN_SPACE) -> str:
    return "[" + ", ".join(format_count(d, sep) for d in shape) + "]"


def node_label(node: dict) -> str:
    """One line for a node: ``model.layers(24)``, ``dense.0: affine 8-bit g64 [3 072, 768]``, ``x [768] F16``."""
    if "same_as" in node:
        return f"{node['name']}: same as {node['same_as']}"
    if "children" in node:
        return f"{node['name']}({node['count']})"
    if node["quant"]:
        return f"{node['name']}: {node['quant']} {format_shape(node['shape'])}"
    return f"{node['name']} {format_shape(node['shape'])} {node['dtype']}"


def tree_lines(nodes: list[dict], indent: str = "  ", depth: int = 0) -> list[str]:
    """The tree as indented text lines."""
    lines = []
    for node in nodes:
        lines.append(indent * depth + node_label(node))
        if "children" in node:
            lines += tree_lines(node["children"], indent, depth + 1)
    return lines
