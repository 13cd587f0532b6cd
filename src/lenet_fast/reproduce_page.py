"""Deprecated: ``lenet_fast.reproduce_page`` goes in the next release; use
lenet_fast.reproduce.page."""

from ._moved import forward

__getattr__ = forward(__name__)
