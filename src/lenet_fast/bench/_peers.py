"""The peers timed beside lenet_fast: PyTorch (the same network, training and
inference), ONNX Runtime and OpenVINO (lenet_fast's own ONNX export, inference).
"""

from __future__ import annotations

from typing import Any

#: The libraries timed beside lenet_fast (the runtimes: inference rows only).
PEERS = ("torch", "onnxruntime", "openvino")


RUNTIMES = ("onnxruntime", "openvino")


#: What the PyTorch model is, for the report.
TORCH_NETWORK = ("Conv2d(1,6,5)-ReLU-MaxPool2d(2)-Conv2d(6,16,5)-ReLU-MaxPool2d(2)-"
                 "Conv2d(16,120,5)-ReLU-Linear(120,84)-ReLU-Linear(84,10), CrossEntropyLoss")


class _RuntimeRunner:
    """What the two inference runtimes share: the batches, the next one, no loss."""

    def __init__(self, batches):
        self.batches = batches
        self._next = 0

    def enter(self):
        """Nothing: the runtime owns its threads."""

    def loss(self):
        """None: the runtimes only infer.

        Returns
        -------
        None
        """
        return None


class OnnxRuntimeRunner(_RuntimeRunner):
    """ONNX Runtime running lenet_fast's own ONNX export (`LeNet5.to_onnx`: uint8 digits
    in, probabilities out) with `n_threads` intra-op threads; inference only.

    Parameters
    ----------
    model_proto : onnx.ModelProto
        lenet_fast's ONNX export of the model.
    batches : list of tuple
        (uint8 digits, labels) pairs; inference uses the digits.
    n_threads : int
        The runtime's intra-op threads.
    """

    name = "onnxruntime"

    def __init__(self, model_proto, batches, n_threads):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = n_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(model_proto.SerializeToString(), opts,
                                            providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        super().__init__(batches)

    def run(self, steps):
        """Run inferences over the batches, cyclically.

        Parameters
        ----------
        steps : int
            How many inferences.
        """
        run, name, batches, k = self.session.run, self.input, self.batches, len(self.batches)
        j = self._next
        for _ in range(steps):
            run(["probabilities"], {name: batches[j][0]})
            j = (j + 1) % k
        self._next = j


class OpenVinoRunner(_RuntimeRunner):
    """OpenVINO running lenet_fast's own ONNX export on the CPU with `n_threads`
    inference threads (one stream, latency hint), in float32 (its default on CPUs with
    AMX or AVX-512 BF16 is bfloat16, a different precision); inference only.

    Parameters
    ----------
    model_proto : onnx.ModelProto
        lenet_fast's ONNX export, compiled for the CPU.
    batches : list of tuple
        (uint8 digits, labels) pairs; inference uses the digits.
    n_threads : int
        OpenVINO's inference threads.
    """

    name = "openvino"

    def __init__(self, model_proto, batches, n_threads):
        import openvino as ov

        core = ov.Core()
        model = core.read_model(model_proto.SerializeToString(), b"")
        self.compiled = core.compile_model(model, "CPU", {
            "INFERENCE_NUM_THREADS": n_threads, "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})
        self.request = self.compiled.create_infer_request()
        self.output = self.compiled.output("probabilities")
        super().__init__(batches)

    def run(self, steps):
        """Make inference requests over the batches, one after the other, cyclically.

        Parameters
        ----------
        steps : int
            How many inference requests to make.
        """
        infer, batches, k = self.request.infer, self.batches, len(self.batches)
        j = self._next
        for _ in range(steps):
            infer([batches[j][0]])
            j = (j + 1) % k
        self._next = j


def import_runtimes() -> tuple[dict[str, Any], dict[str, str]]:
    """({name: runner class}, {name: reason it is missing}) for ONNX Runtime and
    OpenVINO; both need the onnx package to export lenet_fast's model.

    Returns
    -------
    runners : dict
        Name -> runner class.
    missing : dict
        Name -> the reason it cannot run.
    """
    found, missing = {}, {}
    try:
        import onnx  # noqa: F401
    except ImportError as exc:
        reason = f"onnx not installed ({exc})"
        return {}, {"onnxruntime": reason, "openvino": reason}
    for name, module, cls in (("onnxruntime", "onnxruntime", OnnxRuntimeRunner),
                              ("openvino", "openvino", OpenVinoRunner)):
        try:
            __import__(module)
            found[name] = cls
        except Exception as exc:  # ImportError, or a broken install
            missing[name] = f"not usable ({type(exc).__name__}: {exc})"
    return found, missing


def torch_network(torch):
    """The PyTorch LeNet-5 (modern, dense C3), seeded."""
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


class TorchRunner:
    """PyTorch: the same network + CrossEntropyLoss + torch.optim.SGD, or forward only.

    Parameters
    ----------
    torch : module
        The imported torch (`import_torch`).
    mode : {"train", "infer"}
        Training steps or inference.
    batches : list of tuple
        (images, labels) pairs, as `pool_batches` makes them.
    n_threads : int
        torch's intra-op threads.
    """

    name = "torch"

    def __init__(self, torch, mode, batches, n_threads):
        self.torch = torch
        self.n_threads = n_threads
        self.mode = mode
        self.net = torch_network(torch)
        self.xs = [torch.from_numpy(x) for x, _ in batches]
        self.ys = [torch.from_numpy(y) for _, y in batches]
        self._next = 0
        self._last = None
        if mode == "train":
            self.net.train()
            self.optimizer = torch.optim.SGD(self.net.parameters(), lr=0.01, momentum=0.9)
            self.loss_fn = torch.nn.CrossEntropyLoss()
        else:
            self.net.eval()

    def enter(self):
        """Set PyTorch's thread count for this runner."""
        if self.torch.get_num_threads() != self.n_threads:
            self.torch.set_num_threads(self.n_threads)

    def run(self, steps):
        """Run `steps` training steps or forward passes over the batches, cyclically.

        Parameters
        ----------
        steps : int
            How many training steps or forward passes.
        """
        net, xs, ys, k = self.net, self.xs, self.ys, len(self.xs)
        j = self._next
        if self.mode == "train":
            opt, loss_fn = self.optimizer, self.loss_fn
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(xs[j]), ys[j])
                loss.backward()
                opt.step()
                j = (j + 1) % k
            self._last = loss
        else:
            softmax = self.torch.softmax
            with self.torch.inference_mode():
                for _ in range(steps):
                    softmax(net(xs[j]), 1)
                    j = (j + 1) % k
        self._next = j

    def loss(self):
        """The last training loss as a float (None for inference).

        Returns
        -------
        loss : float or None
            None when the runner only infers (no loss is computed).
        """
        return None if self._last is None else float(self._last.detach())


def import_torch():
    """PyTorch, if it can be used.

    Returns
    -------
    torch : module or None
        The torch module.
    reason : str or None
        Why it cannot be used, when it cannot.
    """
    try:
        import torch
    except ImportError as exc:
        return None, f"not installed ({exc})"
    except Exception as exc:  # a broken install: report it, run without torch
        return None, f"import failed: {type(exc).__name__}: {exc}"
    return torch, None
