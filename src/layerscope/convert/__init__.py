"""Checkpoints turned into other forms: float views of any source, MLX and GGUF writers, ``quantize``, weight error.

This package sits above :mod:`layerscope.models` (it loads weights through it) and below the experiments;
:mod:`layerscope.checkpoints` below it only reads headers.
"""
