"""Pictures (PNG, JPEG, ...) made MNIST-like digits.

The module's documentation is that of the code it hands on (below).
"""

from ._io import pictures as _home
from ._io.pictures import (  # noqa: F401
    BOX, CENTRE, LIGHT_BACKGROUND, MIN_CONTRAST, INK_FRACTION, MAX_PIXELS, FORMATS,
    PictureError, dark_on_light, ink_on_black, mnist_digit, decode_picture,
)

__doc__ = _home.__doc__
__all__ = [
    "BOX", "CENTRE", "LIGHT_BACKGROUND", "MIN_CONTRAST", "INK_FRACTION", "MAX_PIXELS",
    "FORMATS", "PictureError", "dark_on_light", "ink_on_black", "mnist_digit",
    "decode_picture",
]
