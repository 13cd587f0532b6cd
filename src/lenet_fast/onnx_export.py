# lenet_fast.onnx_export, public: the ONNX export of a model. Its text is that of the
# module that holds the code, handed on with its names.
from ._io.onnx_export import (  # noqa: F401
    __doc__, OPSET, IR_VERSION, build_onnx, export_onnx,
)

__all__ = [
    "OPSET", "IR_VERSION", "build_onnx", "export_onnx",
]
