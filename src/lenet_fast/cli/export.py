"""``lenet-fast export``: convert a model file to ONNX, safetensors or npz."""

from __future__ import annotations

import os

from .._io.onnx_export import OPSET
from ._common import CLIError, _check_writable, _load_model, _one_line, _os_error

#: Output formats of ``lenet-fast export``, by the output file's extension.
EXPORT_FORMATS = {".onnx": "onnx", ".safetensors": "safetensors", ".npz": "npz"}


HELP = "convert a saved model to ONNX, safetensors or npz"
DESCRIPTION = f"""
Write a saved model (.npz or .safetensors, or a training checkpoint) in the format named
by OUT's extension: .onnx, an ONNX graph (opset {OPSET}, dynamic batch) that onnxruntime
and other runtimes run without lenet_fast (needs pip install "lenet-fast[onnx]");
.safetensors, the weights with the configuration in the metadata, readable by any
safetensors reader (needs pip install "lenet-fast[safetensors]"); .npz, lenet_fast's own
format.
"""
EPILOG = """
The ONNX graph takes uint8 MNIST digits (N, 28, 28) as input 'images' and preprocesses
them itself (--no-preprocess: float32 (N, 1, 32, 32) input 'input', as
lenet_fast.datasets.preprocess makes); its outputs are 'logits' (modern) or 'distances'
(lecun98, the RBF outputs, lower is better) and 'probabilities', each (N, 10). See
lenet_fast.onnx_export.
"""


def add_arguments(p, parsers):
    """The options of ``export``."""
    p.add_argument("model", metavar="MODEL", help="model file (.npz or .safetensors)")
    p.add_argument("out", metavar="OUT", help="output file: .onnx, .safetensors or .npz")
    p.add_argument("--no-preprocess", action="store_true",
                   help="ONNX only: take preprocessed float32 (N, 1, 32, 32) input instead of "
                        "uint8 (N, 28, 28) digits")


def run(args):
    ext = os.path.splitext(args.out)[1].lower()
    fmt = EXPORT_FORMATS.get(ext)
    if fmt is None:
        raise CLIError(f"cannot tell the format of {args.out}: give it one of the extensions "
                       f"{', '.join(EXPORT_FORMATS)}", code=2)
    if args.no_preprocess and fmt != "onnx":
        raise CLIError("--no-preprocess applies to ONNX output (.onnx) only", code=2)
    model = _load_model(args.model)
    _check_writable(args.out, f"{fmt} file")
    try:
        if fmt == "onnx":
            model.to_onnx(args.out, preprocess=not args.no_preprocess)
        else:
            model.save(args.out, format=fmt)
    except ImportError as exc:
        raise CLIError(_one_line(exc)) from None
    except OSError as exc:
        raise CLIError(f"cannot write {args.out}: {_os_error(exc)}") from None
    what = {"onnx": f"ONNX (opset {OPSET}; input " + ("float32 (N, 1, 32, 32) 'input'"
                                                 if args.no_preprocess else
                                                 "uint8 (N, 28, 28) 'images'") +
                    f"; outputs '{'logits' if model.variant == 'modern' else 'distances'}', "
                    "'probabilities')",
            "safetensors": "safetensors", "npz": "npz"}[fmt]
    print(f"{args.model} ({model.variant}, c3={model.c3}) exported to {args.out}: {what}")
    return 0

