"""Deprecated: ``lenet_fast.reproduce_summary`` goes in the next release; use
lenet_fast.reproduce.summary."""

from ._moved import forward

__getattr__ = forward(__name__)
