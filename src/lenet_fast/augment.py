"""Distortions of the training digits.

The module's documentation is that of the code it hands on (below).
"""

from ._training import augment as _home
from ._training.augment import (  # noqa: F401
    Affine, Elastic, FixedDistortions, make_augmenter, AUGMENTERS, MAX_COPIES,
)

__doc__ = _home.__doc__
__all__ = [
    "Affine", "Elastic", "FixedDistortions", "make_augmenter", "AUGMENTERS", "MAX_COPIES",
]
