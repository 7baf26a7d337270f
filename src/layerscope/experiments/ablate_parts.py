"""Resumable ablation runs: each finished configuration is one file under ``<out>/parts/``.

``parts/identity.json`` holds what makes results comparable (config, model fingerprint, task items);
a rerun into the same directory with a different identity is refused, naming the first difference.
Each configuration's rows are written atomically to ``parts/<label>.jsonl`` (its label with ``-`` for the
space: ``baseline.jsonl``, ``drop-4,5.jsonl``; JSON escapes any token text) the moment it finishes, so an
interrupted run (Ctrl-C or kill) keeps every finished configuration and never a half file. These are the
engine's checkpoints; the run's final files are written by :class:`~layerscope.rundir.RunDir`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..atomic import write_json, write_text
from ..errors import LayerscopeError


def config_label(removed: tuple[int, ...]) -> str:
    """The one label of a configuration, in every table and figure: ``()`` -> ``"baseline"``,
    ``(4,)`` -> ``"drop 4"``, ``(4, 5)`` -> ``"drop 4,5"`` (``k``: decoder block ``k``, the layer named ``k``)."""
    return "baseline" if not removed else "drop " + ",".join(map(str, removed))


def part_name(removed: tuple[int, ...]) -> str:
    """The file stem under ``parts/``: the label with ``-`` for its space (``"drop-4,5"``)."""
    return config_label(removed).replace(" ", "-")


class PartStore:
    """The ``parts/`` directory of one run.

    Example:
        >>> store = PartStore("runs/ablate", identity)    # refuses a directory holding another run
        >>> store.done((4,))
        False
    """

    def __init__(self, out: str | Path, identity: dict):
        self.root = Path(out) / "parts"
        self.identity = json.loads(json.dumps(identity, default=str))
        path = self.root / "identity.json"
        if path.is_file():
            stored = json.loads(path.read_text(encoding="utf-8"))
            difference = first_difference(stored, self.identity)
            if difference is not None:
                raise LayerscopeError(
                    f"{str(Path(out))!r} holds a different ablation run ({difference}); "
                    "write to another directory or delete that one"
                )
        else:
            write_json(path, self.identity)

    def path(self, removed: tuple[int, ...]) -> Path:
        return self.root / f"{part_name(removed)}.jsonl"

    def done(self, removed: tuple[int, ...]) -> bool:
        return self.path(removed).is_file()

    def save(self, removed: tuple[int, ...], rows: pd.DataFrame) -> None:
        lines = [json.dumps(record, ensure_ascii=False) for record in rows.to_dict("records")]
        write_text(self.path(removed), "\n".join([json.dumps(list(rows.columns))] + lines) + "\n")

    def load(self, removed: tuple[int, ...]) -> pd.DataFrame:
        header, *lines = self.path(removed).read_text(encoding="utf-8").splitlines()
        return pd.DataFrame([json.loads(line) for line in lines], columns=json.loads(header))


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
