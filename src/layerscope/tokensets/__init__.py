"""Token sets: built-in word lists, user files, and how words become token ids."""

from .builtin import BUILTIN_SETS, CATEGORIES, GROUPS, builtin_names
from .encoding import MULTI_TOKEN_POLICIES, TokenItem, check_policy, encode_sets, pool_rows
from .sources import inline_set, merge_sets, resolve_set

__all__ = [
    "BUILTIN_SETS",
    "CATEGORIES",
    "GROUPS",
    "MULTI_TOKEN_POLICIES",
    "TokenItem",
    "builtin_names",
    "check_policy",
    "encode_sets",
    "inline_set",
    "merge_sets",
    "pool_rows",
    "resolve_set",
]
