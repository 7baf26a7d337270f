"""The ``layerscope`` command: parsing only; each subcommand lives in its own module here."""

from .main import main

__all__ = ["main"]
