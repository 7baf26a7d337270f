"""Resumable ablation runs: each finished configuration is one file under ``<out>/parts/``.

``parts/identity.json`` holds what makes results comparable (config, model fingerprint, task items);
a rerun into the same directory with a different identity is refused, naming the first difference.
Each configuration's rows are written atomically to ``parts/<label>.jsonl`` (its label with ``-`` for the
spaces: ``baseline.jsonl``, ``drop-4,5.jsonl``, ``drop-attn-4.jsonl``; JSON escapes any token text) the moment it finishes, so an
interrupted run (Ctrl-C or kill) keeps every finished configuration and never a half file. These are the
engine's checkpoints; the run's final files are written by :class:`~layerscope.rundir.RunDir`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import LayerscopeError
from ..rundir import RunDir
from ..user_files import text_lines
from .ablate_config import PART_CHOICES, parse_parts  # noqa: F401  (the parts a config names)


def config_label(removed: tuple[int, ...], part: str = "block") -> str:
    """The one label of a configuration, in every table and figure: ``()`` -> ``"baseline"``,
    ``(4,)`` -> ``"drop 4"``, ``(4, 5)`` -> ``"drop 4,5"`` (``k``: decoder block ``k``, the layer named ``k``);
    with ``part`` ``"attn"`` or ``"mlp"`` (only that sub-block removed): ``"drop attn 4"``, ``"drop mlp 4,5"``."""
    if not removed:
        return "baseline"
    return "drop " + ("" if part == "block" else part + " ") + ",".join(map(str, removed))


def part_name(removed: tuple[int, ...], part: str = "block") -> str:
    """The file stem under ``parts/``: the label with ``-`` for its spaces (``"drop-4,5"``, ``"drop-mlp-4,5"``)."""
    return config_label(removed, part).replace(" ", "-")


def removed_part(removed: tuple[int, ...], part: str = "block") -> str:
    """The ``part`` column of a configuration: ``"none"`` for the baseline, else ``block``, ``attn`` or ``mlp``."""
    return part if removed else "none"


class PartStore:
    """The ``parts/`` directory of one run.

    Example:
        >>> store = PartStore("runs/ablate", identity)    # refuses a directory holding another run
        >>> store.done((4,))
        False
    """

    def __init__(self, out: str | Path, identity: dict):
        self.run_dir = RunDir(out)
        self.identity = json.loads(json.dumps(identity, default=str))
        text = self.run_dir.read_part("identity.json")
        if text is not None:
            stored = json.loads(text)
            difference = first_difference(stored, self.identity)
            if difference is not None:
                raise LayerscopeError(
                    f"{str(Path(out))!r} holds a different ablation run ({difference}); "
                    "write to another directory or delete that one"
                )
        else:
            self.run_dir.write_part("identity.json", json.dumps(self.identity, indent=2) + "\n")

    @staticmethod
    def name(removed: tuple[int, ...], part: str = "block") -> str:
        return f"{part_name(removed, part)}.jsonl"

    def done(self, removed: tuple[int, ...], part: str = "block") -> bool:
        return self.run_dir.has_part(self.name(removed, part))

    def save(self, removed: tuple[int, ...], rows: pd.DataFrame, part: str = "block") -> None:
        """One JSON line per row, ASCII only (``\\u2028`` escaped), so no line separator ends a line early."""
        lines = [json.dumps(record, ensure_ascii=True) for record in rows.to_dict("records")]
        self.run_dir.write_part(self.name(removed, part), "\n".join([json.dumps(list(rows.columns))] + lines) + "\n")

    def load(self, removed: tuple[int, ...], part: str = "block") -> pd.DataFrame:
        """The rows :meth:`save` wrote; lines are split on ``"\\n"`` only (parts written before rows were
        ASCII hold raw U+0085, U+2028 or U+2029 inside their strings)."""
        name = self.name(removed, part)
        try:
            header, *lines = text_lines(self.run_dir.read_part(name) or "")
            return pd.DataFrame([json.loads(line) for line in lines], columns=json.loads(header))
        except (OSError, ValueError) as exc:  # a file left by something else than this writer
            raise LayerscopeError(
                f"{str(self.run_dir.part_path(name))!r} is not a part this run wrote ({str(exc).splitlines()[0]}); "
                "delete it to recompute it"
            ) from None


def first_difference(stored, current, where: str = "") -> str | None:
    """A short description of the first place where two JSON values differ, or None."""
    if isinstance(stored, dict) and isinstance(current, dict):
        for key in list(dict.fromkeys([*stored, *current])):
            if key not in stored or key not in current:
                return f"{where + key}: only in the {'new' if key in current else 'stored'} run"
            found = first_difference(stored[key], current[key], f"{where}{key}.")
            if found is not None:
                return found
        return None
    if isinstance(stored, list) and isinstance(current, list) and len(stored) == len(current):
        for i, (a, b) in enumerate(zip(stored, current)):
            found = first_difference(a, b, f"{where}{i}.")
            if found is not None:
                return found
        return None
    if stored != current:
        name = where.rstrip(".")
        if isinstance(stored, list) and isinstance(current, list):
            return f"{name}: {len(stored)} entries stored, {len(current)} now"
        return f"{name}: stored {stored!r}, now {current!r}"
    return None


def parts_phrase(parts) -> str:
    """What a run removes, for titles: ``blocks``, ``attention``, ``MLPs``, ``attention or MLPs``."""
    names = {"block": "blocks", "attn": "attention", "mlp": "MLPs"}
    words = [names.get(p, p) for p in parts] or ["blocks"]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def part_phrase(part: str, blocks: str) -> str:
    """``("attn", "block 4")`` -> ``"the attention of block 4"``; ``("block", "block 4")`` -> ``"block 4"``."""
    return {"attn": f"the attention of {blocks}", "mlp": f"the MLP of {blocks}"}.get(part, blocks)
