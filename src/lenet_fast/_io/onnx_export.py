"""ONNX export of a `LeNet5`, built with the ``onnx`` package's helpers (no PyTorch).

``model.to_onnx("lenet5.onnx")`` (or ``lenet-fast export MODEL.npz lenet5.onnx``)
writes a graph that any ONNX runtime runs::

    import onnxruntime as ort
    session = ort.InferenceSession("lenet5.onnx")
    logits, proba = session.run(None, {"images": digits})   # digits: uint8 (N, 28, 28)

Needs ``onnx`` (``pip install "lenet-fast[onnx]"``, which also brings onnxruntime).

The graph
---------
Opset `OPSET` (17) and IR version `IR_VERSION` (8), which onnxruntime has run since
1.14; the batch dimension is dynamic (``"N"``). `onnx.checker` passes (full check).

Input, with ``preprocess=True`` (default): ``images``, uint8 (N, 28, 28), MNIST grey
levels (0 background, 255 ink). The graph maps them as
`lenet_fast.datasets.preprocess` does, by a Gather from the same 256-entry table (so
the values are the same bits: 0 -> -0.1, 255 -> 1.175), and pads to 32x32 with the
background value. With ``preprocess=False``: ``input``, float32 (N, 1, 32, 32), what
`LeNet5.forward` takes.

Outputs, float32 (N, 10):

- modern: ``logits`` (= `LeNet5.forward`) and ``probabilities`` (Softmax of the
  logits, = `LeNet5.predict_proba`);
- lecun98: ``distances``, the RBF outputs y_i = sum_j (x_j - c_ij)^2 (=
  `LeNet5.forward`; lower is better), and ``probabilities`` (Softmax of the negated
  distances, = `LeNet5.predict_proba`).

The predicted digit is the argmax of ``probabilities``.

Layers: modern is Conv/Relu/MaxPool (C1, C3), Conv/Relu (C5), Flatten, Gemm/Relu
(F6), Gemm (output), Softmax. lecun98 has the scaled tanh 1.7159 tanh(2a/3) as
Mul/Tanh/Mul after every layer, the trainable subsampling S2/S4 as a depthwise
2x2 stride-2 Conv (``group`` = maps) whose four weights per map all equal the map's
coefficient, plus its bias, and the RBF layer as Sub/Mul/ReduceSum against the fixed
centres. C3 with LeCun's table is a dense Conv whose unconnected weights are exactly
zero. Initializers are named like `LeNet5.params` (``c1.weight``, ...; ``s2.weight``
is the depthwise kernel built from ``s2.coef``; ``rbf.centers`` the codes).
"""

from __future__ import annotations

import json

import numpy as np

from .._version import __version__
from .._compute.tables import TANH_A, TANH_S
from .datasets import PIXEL_LUT
from .files import atomic_write

__all__ = ["OPSET", "IR_VERSION", "build_onnx", "export_onnx"]

#: ONNX operator set of the exported graph (default domain).
OPSET = 17
#: ONNX IR version of the exported file.
IR_VERSION = 8


def _import_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError('ONNX export needs the onnx package: pip install "lenet-fast[onnx]"') from exc
    return onnx


class _Graph:
    """Nodes and initializers of a graph under construction."""

    def __init__(self, onnx):
        self.helper = onnx.helper
        self.numpy_helper = onnx.numpy_helper
        self.nodes = []
        self.initializers = []
        self._names = set()
        self._count = {}

    def const(self, name, value, dtype=np.float32):
        """An initializer (a copy of `value`); a name already given is reused."""
        if name not in self._names:
            value = np.ascontiguousarray(value, dtype=dtype)
            self.initializers.append(self.numpy_helper.from_array(value, name))
            self._names.add(name)
        return name

    def op(self, op_type, inputs, out=None, **attrs):
        if out is None:
            k = self._count[op_type] = self._count.get(op_type, 0) + 1
            out = f"{op_type.lower()}_{k}"
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def conv(self, x, name, weight, bias, *, stride=1, group=1):
        w = self.const(f"{name}.weight", weight)
        b = self.const(f"{name}.bias", bias)
        k = weight.shape[-1]
        return self.op("Conv", [x, w, b], f"{name}", kernel_shape=[k, k], strides=[stride, stride],
                       group=group)

    def gemm(self, x, name, weight, bias):
        return self.op("Gemm", [x, self.const(f"{name}.weight", weight),
                                self.const(f"{name}.bias", bias)], name, transB=1)

    def squash(self, x):
        """LeCun's f(a) = A tanh(S a)."""
        s = self.op("Mul", [x, "tanh.S"])
        return self.op("Mul", [self.op("Tanh", [s]), "tanh.A"])


def _input(g, preprocess):
    """The graph input and the float32 (N, 1, 32, 32) tensor the network reads."""
    from onnx import TensorProto
    if not preprocess:
        return g.helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 32, 32]), "input"
    info = g.helper.make_tensor_value_info("images", TensorProto.UINT8, ["N", 28, 28])
    idx = g.op("Cast", ["images"], "grey_levels", to=TensorProto.INT64)
    coded = g.op("Gather", [g.const("preprocess.lut", PIXEL_LUT), idx], "coded", axis=0)
    coded = g.op("Unsqueeze", [coded, g.const("axis_1", [1], np.int64)], "coded_nchw")
    pads = g.const("preprocess.pads", [0, 0, 2, 2, 0, 0, 2, 2], np.int64)
    x = g.op("Pad", [coded, pads, g.const("preprocess.background", PIXEL_LUT[0])], "x", mode="constant")
    return info, x


def build_onnx(model, *, preprocess=True):
    """The ONNX graph of `model` (module docstring), checked with `onnx.checker`.

    Parameters
    ----------
    model : lenet_fast.LeNet5
    preprocess : bool
        Input uint8 (N, 28, 28) digits and preprocess them in the graph (default), or
        take float32 (N, 1, 32, 32) preprocessed input.

    Returns
    -------
    onnx.ModelProto
        Weights are copies of the model's at the time of the call.
    """
    onnx = _import_onnx()
    from onnx import TensorProto

    p = {k: np.array(v, dtype=np.float32) for k, v in model.params.items()}
    c3_weight = p["c3.weight"] * model.table.T[:, :, None, None]  # exact zeros where unconnected
    g = _Graph(onnx)
    info, x = _input(g, preprocess)
    if model.variant == "modern":
        h = g.op("MaxPool", [g.op("Relu", [g.conv(x, "c1", p["c1.weight"], p["c1.bias"])])], "s2",
                 kernel_shape=[2, 2], strides=[2, 2])
        h = g.op("MaxPool", [g.op("Relu", [g.conv(h, "c3", c3_weight, p["c3.bias"])])], "s4",
                 kernel_shape=[2, 2], strides=[2, 2])
        h = g.op("Flatten", [g.op("Relu", [g.conv(h, "c5", p["c5.weight"], p["c5.bias"])])],
                 axis=1)
        h = g.op("Relu", [g.gemm(h, "f6", p["f6.weight"], p["f6.bias"])])
        out = g.gemm(h, "out", p["out.weight"], p["out.bias"])
        g.op("Identity", [out], "logits")
        g.op("Softmax", ["logits"], "probabilities", axis=1)
        names = ("logits", "probabilities")
    else:
        g.const("tanh.S", TANH_S)
        g.const("tanh.A", TANH_A)
        h = g.squash(g.conv(x, "c1", p["c1.weight"], p["c1.bias"]))
        h = g.squash(g.conv(h, "s2", np.repeat(p["s2.coef"], 4).reshape(6, 1, 2, 2),
                            p["s2.bias"], stride=2, group=6))
        h = g.squash(g.conv(h, "c3", c3_weight, p["c3.bias"]))
        h = g.squash(g.conv(h, "s4", np.repeat(p["s4.coef"], 4).reshape(16, 1, 2, 2),
                            p["s4.bias"], stride=2, group=16))
        h = g.op("Flatten", [g.squash(g.conv(h, "c5", p["c5.weight"], p["c5.bias"]))], axis=1)
        h = g.squash(g.gemm(h, "f6", p["f6.weight"], p["f6.bias"]))
        diff = g.op("Sub", [g.op("Unsqueeze", [h, g.const("axis_1", [1], np.int64)]),
                            g.const("rbf.centers", model.rbf_centers)], "rbf.diff")
        g.op("ReduceSum", [g.op("Mul", [diff, diff]), g.const("axis_2", [2], np.int64)],
             "distances", keepdims=0)
        g.op("Softmax", [g.op("Neg", ["distances"])], "probabilities", axis=1)
        names = ("distances", "probabilities")

    outputs = [g.helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 10]) for n in names]
    graph = g.helper.make_graph(
        g.nodes, f"lenet5_{model.variant}", [info], outputs, initializer=g.initializers,
        doc_string=f"LeNet-5 ({model.variant}, C3 {model.c3}) exported by lenet_fast {__version__}; "
                   f"outputs {names[0]} (N, 10) and probabilities (N, 10)")
    proto = g.helper.make_model(graph, producer_name="lenet_fast", producer_version=__version__,
                                opset_imports=[g.helper.make_opsetid("", OPSET)],
                                ir_version=IR_VERSION)
    g.helper.set_model_props(proto, {"lenet_fast.config": json.dumps(model.config(), sort_keys=True),
                                     "lenet_fast.preprocess": json.dumps(bool(preprocess))})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path, *, preprocess=True):
    """Write `build_onnx(model, preprocess=...)` to `path`, atomically.

    Parameters
    ----------
    model : LeNet5
        The model to export.
    path : str or os.PathLike
        The .onnx file to write.
    preprocess : bool
        True: the graph takes uint8 digits (N, 28, 28) as input ``images``; False:
        preprocessed float32 (N, 1, 32, 32) as input ``input``.

    Returns
    -------
    onnx.ModelProto
        The graph written.
    """
    proto = build_onnx(model, preprocess=preprocess)
    data = proto.SerializeToString()
    atomic_write(path, lambda f: f.write(data), suffix=".onnx")
    return proto
