"""Deprecated: ``lenet_fast.time_to_accuracy`` goes in the next release; use
lenet_fast.bench.time_to_accuracy."""

from ._moved import forward

__getattr__ = forward(__name__)
