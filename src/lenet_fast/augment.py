# lenet_fast.augment, public: distortions of the training digits. Its text is that of
# the module that holds the code, handed on with its names.
from ._training.augment import (  # noqa: F401
    __doc__, Affine, Elastic, FixedDistortions, make_augmenter, AUGMENTERS, MAX_COPIES,
)

__all__ = [
    "Affine", "Elastic", "FixedDistortions", "make_augmenter", "AUGMENTERS",
    "MAX_COPIES",
]
