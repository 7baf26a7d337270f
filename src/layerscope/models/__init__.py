"""Load the model's parts; see :func:`load_model`."""

from .kinds import CAUSAL_LM, ENCODER, require_lm_head
from .loading import load_model
from .model import Model

__all__ = ["CAUSAL_LM", "ENCODER", "Model", "load_model", "require_lm_head"]
