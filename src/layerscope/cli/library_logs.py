"""The command line's name for :mod:`layerscope.library_logs` (a base module: notebooks hold library logs too)."""

from ..library_logs import MAX_HELD_RECORDS, HeldRecords, held_library_logs

__all__ = ["MAX_HELD_RECORDS", "HeldRecords", "held_library_logs"]
