"""The MODNet network in PyTorch: layers, pluggable encoders, the three-branch model and its weights I/O.

Nothing here reads images or parses command lines; it imports torch and nothing else of the package.
"""

from greenless.model.modnet import ModelConfig, MODNet, build_model

__all__ = ["MODNet", "ModelConfig", "build_model"]
