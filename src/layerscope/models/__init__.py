"""Load the model's parts; see :func:`load_model`."""

from .loading import load_model
from .model import Model

__all__ = ["Model", "load_model"]
