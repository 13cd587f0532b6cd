# lenet_fast.pictures, public: pictures (PNG, JPEG, ...) made MNIST-like digits. Its
# text is that of the module that holds the code, handed on with its names.
from ._io.pictures import (  # noqa: F401
    __doc__, BOX, CENTRE, LIGHT_BACKGROUND, MIN_CONTRAST, INK_FRACTION, MAX_PIXELS,
    MAX_SIDE, MAX_ASPECT, MAX_JPEG_SCANS, MAX_JPEG_SEGMENTS, MAX_PNG_CHUNKS,
    FORMATS, PictureError, dark_on_light, ink_on_black, mnist_digit, decode_picture,
    picture_size, grey_levels,
)

__all__ = [
    "BOX", "CENTRE", "LIGHT_BACKGROUND", "MIN_CONTRAST", "INK_FRACTION", "MAX_PIXELS",
    "MAX_SIDE", "MAX_ASPECT", "MAX_JPEG_SCANS", "MAX_JPEG_SEGMENTS", "MAX_PNG_CHUNKS",
    "FORMATS", "PictureError", "dark_on_light", "ink_on_black", "mnist_digit",
    "decode_picture", "picture_size", "grey_levels",
]
