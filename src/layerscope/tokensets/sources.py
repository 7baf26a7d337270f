"""Token sets from names, files and inline lists, as ``{set_name: [word, ...]}``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from ..errors import LayerscopeError, choices_text
from ..user_files import MAX_USER_FILE_BYTES, parse_json, read_user_text, text_lines
from .builtin import BUILTIN_SETS, GROUPS, builtin_names


def resolve_set(name_or_path: str) -> dict[str, list[str]]:
    """A built-in set or group by name, or a user file (``.json``, ``.yaml``/``.yml``, ``.txt``).

    Files hold either a list of words (the set is named after the file) or a mapping
    ``{set_name: [words]}``. A text file has one word per line; ``# comments`` and blank lines are skipped.

    Example:
        >>> resolve_set("digits")["digits"][:3]
        ['0', '1', '2']
    """
    if name_or_path in BUILTIN_SETS:
        return {name_or_path: list(BUILTIN_SETS[name_or_path])}
    if name_or_path in GROUPS:
        return {name: list(BUILTIN_SETS[name]) for name in GROUPS[name_or_path]}
    path = Path(name_or_path).expanduser()
    if path.exists():
        return read_set_file(path)
    raise LayerscopeError(
        f"unknown token set {name_or_path!r}: not a built-in set ({choices_text(builtin_names())}) nor a file"
    )


#: Bounds on a set file: its size (that of every user file), the words of all its sets together, and the YAML
#: aliases it may use.
MAX_SET_FILE_BYTES = MAX_USER_FILE_BYTES
MAX_SET_WORDS = 100_000
MAX_YAML_ALIASES = 100


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


class _SetLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses duplicate keys and more than ``MAX_YAML_ALIASES`` aliases."""

    aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} aliases (refused)")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        keys = []
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in keys:
                raise _DuplicateKey(key)
            keys.append(key)
        return super().construct_mapping(node, deep=deep)


def read_set_file(path: Path) -> dict[str, list[str]]:
    suffix = path.suffix.lower()
    where = str(path)
    text = read_user_text(path, "token set file", limit=MAX_SET_FILE_BYTES)
    try:
        if suffix == ".json":
            data = parse_json(text, repr(where), object_pairs_hook=_no_duplicates)
        elif suffix in {".yaml", ".yml"}:
            try:
                data = yaml.load(text, Loader=_SetLoader)  # noqa: S506 - a SafeLoader subclass
            except (yaml.YAMLError, ValueError) as exc:
                raise LayerscopeError(f"{where!r} is not valid YAML: {str(exc).splitlines()[0]}") from exc
        else:
            data = None
    except RecursionError:
        raise LayerscopeError(f"{where!r} is nested too deeply for a token set file") from None
    except _DuplicateKey as exc:
        raise LayerscopeError(f"{where!r} gives the key {exc.args[0]!r} twice") from None
    if data is None and suffix in {".json", ".yaml", ".yml"}:
        raise LayerscopeError(f"{where!r} holds no token set")
    if data is None:
        data = [line.strip() for line in text_lines(text) if line.strip() and not line.lstrip().startswith("#")]
    return _normalize(data, default_name=path.stem, origin=str(path))


def inline_set(text: str, name: str = "tokens") -> dict[str, list[str]]:
    """``"a,b,c"`` -> ``{"tokens": ["a", "b", "c"]}``. Items are stripped; empty items are an error."""
    words = [w.strip() for w in text.split(",")]
    if not any(words):
        raise LayerscopeError(f"--tokens {text!r} names no word; give a comma-separated list such as 'red,green,blue'")
    if any(not w for w in words):
        raise LayerscopeError(
            f"--tokens {text!r} has an empty item; give a comma-separated list such as 'red,green,blue'"
        )
    return {name: words}


def _normalize(data: object, default_name: str, origin: str) -> dict[str, list[str]]:
    if isinstance(data, list):
        data = {default_name: data}
    if not isinstance(data, dict):
        raise LayerscopeError(f"{origin!r} must hold a list of words or a mapping of set name to words")
    sets: dict[str, list[str]] = {}
    total = 0
    for name, words in data.items():
        if not isinstance(words, list) or not all(
            isinstance(w, str) or (isinstance(w, int) and not isinstance(w, bool)) for w in words
        ):
            raise LayerscopeError(f"set {str(name)[:80]!r} in {origin!r} must be a list of words")
        total += len(words)
        if total > MAX_SET_WORDS:
            raise LayerscopeError(f"{origin!r} holds more than {MAX_SET_WORDS} words (refused)")
        try:
            sets[str(name)] = [str(w) for w in words]
        except ValueError:  # an integer too long to write out
            raise LayerscopeError(f"set {str(name)[:80]!r} in {origin!r} holds a number too long for a word") from None
    check_not_empty(sets, origin)
    return sets


def check_not_empty(sets: dict[str, list[str]], origin: str) -> None:
    if not sets:
        raise LayerscopeError(f"{origin!r} holds no token set")
    for name, words in sets.items():
        if not words:
            raise LayerscopeError(f"token set {name!r} from {origin!r} is empty; give at least one word")


def merge_sets(parts: Iterable[dict[str, list[str]]]) -> dict[str, list[str]]:
    """Merge several ``{set: words}`` mappings in order; a repeated set name is an error."""
    merged: dict[str, list[str]] = {}
    for part in parts:
        for name, words in part.items():
            if name in merged:
                raise LayerscopeError(f"token set {name!r} is given twice")
            merged[name] = words
    return merged
