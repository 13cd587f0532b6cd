"""The ONNX export of a model.

The module's documentation is that of the code it hands on (below).
"""

from ._io import onnx_export as _home
from ._io.onnx_export import (  # noqa: F401
    OPSET, IR_VERSION, build_onnx, export_onnx,
)

__doc__ = _home.__doc__
__all__ = [
    "OPSET", "IR_VERSION", "build_onnx", "export_onnx",
]
