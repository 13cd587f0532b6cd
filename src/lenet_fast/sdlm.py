"""Deprecated: ``lenet_fast.sdlm`` goes in the next release; use lenet_fast.optim."""

from ._moved import forward

__getattr__ = forward(__name__)
