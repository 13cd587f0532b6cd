"""Deprecated: ``lenet_fast.busy`` goes in the next release; use lenet_fast.bench.busy."""

from ._moved import forward

__getattr__ = forward(__name__)
