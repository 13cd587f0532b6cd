# lenet_fast.pictures, public: pictures (PNG, JPEG, ...) made MNIST-like digits. Its
# text is that of the module that holds the code, handed on with its names.
from ._io.pictures import (  # noqa: F401
    __doc__, BOX, CENTRE, LIGHT_BACKGROUND, MIN_CONTRAST, INK_FRACTION, MAX_PIXELS,
    FORMATS, PictureError, dark_on_light, ink_on_black, mnist_digit, decode_picture,
)

__all__ = [
    "BOX", "CENTRE", "LIGHT_BACKGROUND", "MIN_CONTRAST", "INK_FRACTION", "MAX_PIXELS",
    "FORMATS", "PictureError", "dark_on_light", "ink_on_black", "mnist_digit",
    "decode_picture",
]
