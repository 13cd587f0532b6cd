"""Deprecated: ``lenet_fast.trainer`` goes in the next release; use lenet_fast (Trainer,
TrainingDiverged, TrainingInterrupted)."""

from ._moved import forward

__getattr__ = forward(__name__)
