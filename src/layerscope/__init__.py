"""layerscope: look inside language models, how they represent tokens layer by layer.

Example:
    >>> import layerscope
    >>> model = layerscope.load_model()                 # Gemma 3 270M, offline
    >>> result = layerscope.tokens(["digits", "number-words"], model=model, dims=3)
    >>> result.figure()
"""

from .errors import LayerscopeError
from .experiments.ablate import ablate
from .experiments.capture import capture
from .experiments.echo import echo
from .experiments.encode import encode
from .experiments.inspect import inspect
from .experiments.layers import layers
from .experiments.tokens import tokens
from .models import Model, load_model

__all__ = [
    "LayerscopeError",
    "Model",
    "ablate",
    "capture",
    "echo",
    "encode",
    "inspect",
    "layers",
    "load_model",
    "tokens",
]
__version__ = "0.1.0"
