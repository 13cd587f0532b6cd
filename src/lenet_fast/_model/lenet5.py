"""The LeNet5 class: parameters, buffers, the compiled passes and the public
methods; `load` builds one from a model file (see `lenet_fast.model` for the presets)."""

import math
import time

import numpy as np

from .._isa import kernels as _kernels
from .._io.checkpoint import read_model, save_model
from .._io.datasets import PIXEL_LUT
from .._io.onnx_export import export_onnx
from .._io.safetensors_io import (
    is_safetensors,
    read_safetensors,
    save_safetensors,
    wants_safetensors,
)
from .._compute.codes import RBF_CODES
from .._compute.ops import connections, resolve_threads
from .._compute.tables import C3_CHOICES, INITS, LECUN_C3_TABLE, VARIANTS, param_shapes
from ._inputs import (
    _as_batch,
    _as_c,
    _as_model_input,
    _check_input,
    _check_labels,
    _check_smoothing,
    _positive_int,
)
from ._runtime import ParamDict, _Pacer, _Pool

#: The constant j of the MAP loss (eq. 9): the "rubbish class" term e^{-j} bounds the
#: push on the wrong classes' distances. With +-1 codes two classes' centres lie
#: 4 x (Hamming distance) >= 40 apart; j = 10 keeps pushing a wrong class away until its
#: distance is well beyond what a correct class reaches.
MAP_J = 10.0

_NO_RESIDUAL = np.zeros(0, np.float32)


class LeNet5:
    """LeNet-5 with Cython/OpenMP kernels.

    Parameters
    ----------
    variant : {"modern", "lecun98"}
        The preset (see the module docstring).
    c3 : {"lecun", "full"}
        C3 with LeCun's connection table (60 of 96 map pairs) or dense.
    seed : int
        Seed of the weight initialisation.
    init : {"auto", "he", "fanin-sqrt", "fanin"}
        Weight initialisation (module docstring); "auto": "he" for modern, "fanin" for
        lecun98. Train lecun98 with SDLM from "fanin-sqrt".
    n_threads : int or None
        Threads for the kernels; None uses the OpenMP default. Results do not
        depend on it.

    Attributes
    ----------
    history : list of dict
        The training history: per epoch, what `Trainer.fit` records (epoch, lr,
        train_loss, train_accuracy, val_loss, val_accuracy, ...). `Trainer.fit` sets
        it; `save` writes it and `lenet_fast.load` restores it. [] when untrained.
    """

    def __init__(self, variant="modern", *, c3="lecun", seed=0, init="auto", n_threads=None):
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if c3 not in C3_CHOICES:
            raise ValueError(f"c3 must be one of {C3_CHOICES}, got {c3!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if init == "auto":
            init = "he" if variant == "modern" else "fanin"
        self.init = init
        self.variant = variant
        self.c3 = c3
        self.seed = int(seed)
        self.n_threads = n_threads
        self.table = LECUN_C3_TABLE if c3 == "lecun" else np.ones((6, 16), dtype=bool)
        self._conn = {
            "c1": connections(None, 1, 6),
            "c3": connections(self.table, 6, 16),
            "c5": connections(None, 16, 120),
        }
        shapes = param_shapes(variant)
        sizes = [int(np.prod(s)) for _, s in shapes]
        self.flat_params = np.zeros(sum(sizes), dtype=np.float32)
        self.flat_grads = np.zeros(sum(sizes), dtype=np.float32)
        self._params_backup = np.empty_like(self.flat_params)  # train_step's undo copy
        self.params = ParamDict()
        self.grads = {}
        offset = 0
        for (name, shape), size in zip(shapes, sizes):
            dict.__setitem__(self.params, name, self.flat_params[offset:offset + size].reshape(shape))
            self.grads[name] = self.flat_grads[offset:offset + size].reshape(shape)
            offset += size
        self.rbf_centers = RBF_CODES.copy() if variant == "lecun98" else None
        if self.rbf_centers is not None:
            self.rbf_centers.setflags(write=False)
        self._plan = _kernels.Plan(self.flat_params, self.params, self._conn, self.rbf_centers,
                               MAP_J)
        self._workspaces = _Pool()   # per-thread activations of one block each
        self._pacer = _Pacer()       # all threads or one, whichever trains faster now
        self._slots = _Pool()        # per-block gradient vectors of a training pass
        self.last_output = None
        self.history = []
        self.reset_parameters(seed)

    # ------------------------------------------------------------------ set-up
    @property
    def n_threads(self):
        """Threads of the kernels (int, 1 to 1024), or None for the OpenMP default.

        Results do not depend on it. Setting it checks the value.
        """
        return self._n_threads

    @n_threads.setter
    def n_threads(self, value):
        self._nt = resolve_threads(value)
        self._n_threads = value

    def reset_parameters(self, seed=None):
        """(Re)initialise the weights from `seed`.

        Parameters
        ----------
        seed : int or None
            The seed; None: the model's own (``model.seed``).
        """
        rng = np.random.default_rng(self.seed if seed is None else seed)
        p = self.params
        fans = {"c1": 25, "c5": 400, "f6": 120, "s2": 4, "s4": 4, "out": 84}
        per_map = self.table.sum(axis=0) * 25  # C3: the fan-in depends on the table
        for name, shape in param_shapes(self.variant):
            layer = name.split(".")[0]
            fan = fans[layer] if layer != "c3" else (
                per_map[:, None, None, None] if name.endswith("weight") else per_map)
            if self.init == "he":
                p[name][...] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan)
                                if name.endswith(("weight", "coef")) else 0)
            else:
                bound = 2.4 / (np.sqrt(fan) if self.init == "fanin-sqrt" else fan)
                p[name][...] = rng.uniform(-1.0, 1.0, shape) * bound
        p["c3.weight"][...] *= self.table.T[:, :, None, None]

    def num_parameters(self):
        """The number of trainable parameters.

        Returns
        -------
        int
            C3 counts only the connected weights (lecun98: 60,000).
        """
        c3_unconnected = (~self.table).sum() * 25
        return int(self.flat_params.size - c3_unconnected)

    # ------------------------------------------------------------------ passes
    # Each call takes its own scratch memory from the pools (and returns it), so calls
    # from several Python threads at once never share activations.
    def _call(self, fn, n, nt, slots=False):
        ws = self._workspaces.take(nt * self._plan.ws_floats)
        sl = None
        if slots:
            sl = self._slots.take(self._plan.slots_floats(n))
        try:
            return fn(ws, sl)
        finally:
            self._workspaces.give(ws)
            if sl is not None:
                self._slots.give(sl)

    def _threads_for(self, n):
        # A pass runs blocks of samples (`_kernels.block_size`), one thread each (more
        # threads than blocks would only wait); a pass of one block shares each layer
        # between the threads instead (`_kernels._run`).
        # One sample runs on one thread: splitting its layers costs more in waits than
        # it saves (measured: batch-1 inference 0.73x, training 0.96x on 2 threads).
        if n == 1:
            return 1
        blocks = _kernels.blocks(n)
        return self._nt if blocks == 1 else min(self._nt, blocks)

    def _outputs(self, x, proba=False, out=None):
        """Network output (N, 10) for checked input (float32 (N,1,32,32) or uint8 (N,28,28));
        with `proba`, the class probabilities (computed in the pass); written into `out`
        (a C-contiguous float32 (N, 10)) when given."""
        n = x.shape[0]
        if out is None:
            out = np.empty((n, 10), np.float32)
        if n:
            nt = self._threads_for(n)
            self._call(lambda ws, _: self._plan.forward(x, out, ws, nt, PIXEL_LUT, proba), n, nt)
        return out

    def _chunked_outputs(self, x, batch_size, proba):
        """`_outputs` of user input (checked) in compiled calls of `batch_size` images, each
        writing its rows of one result array."""
        x = _as_c(_as_model_input(x))
        batch_size = _positive_int("batch_size", batch_size)
        out = np.empty((x.shape[0], 10), np.float32)
        for start in range(0, x.shape[0], batch_size):
            stop = start + batch_size
            self._outputs(x[start:stop], proba, out[start:stop])
        return out

    def _train_pass(self, x, labels, label_smoothing=0.0):
        """Forward, loss and backward of a checked batch in one compiled call: returns
        (mean loss, correct predictions, outputs); the gradients overwrite self.grads."""
        n = x.shape[0]
        out = np.empty((n, 10), np.float32)
        nt = self._threads_for(n)
        if nt > 1:
            nt = self._pacer.choose(n, nt)
        t0 = time.perf_counter()
        loss, correct = self._call(
            lambda ws, sl: self._plan.train_pass(x, labels, out, self.flat_grads, ws, sl, nt,
                                                 PIXEL_LUT, label_smoothing), n, nt, slots=True)
        self._pacer.record(n, nt, time.perf_counter() - t0)
        return loss, correct, out

    # ------------------------------------------------------------------ public API
    def forward(self, x):
        """Network output for a batch.

        Parameters
        ----------
        x : float32 (N, 1, 32, 32)
            Preprocessed images (`lenet_fast.datasets.preprocess`).

        Returns
        -------
        float32 (N, 10)
            Logits (modern) or RBF distances, lower is better (lecun98).
        """
        return self._outputs(_as_c(_check_input(x)))

    def scores(self, x, batch_size=1000):
        """Class scores, higher is better, for preprocessed or raw uint8 images.

        Parameters
        ----------
        x : float32 (N, 1, 32, 32) or uint8 (N, 28, 28) (or one (28, 28) digit)
        batch_size : int >= 1
            Images per compiled call (bounds the memory of each call, not the result).

        Returns
        -------
        float32 (N, 10)
            Logits (modern) or negated RBF distances (lecun98).
        """
        out = self._chunked_outputs(x, batch_size, proba=False)
        if self.variant == "lecun98":
            np.negative(out, out=out)
        return out

    def predict(self, x, batch_size=1000):
        """Predicted digits.

        Parameters
        ----------
        x, batch_size : as in `scores`

        Returns
        -------
        digits : ndarray
            int64 (N,), 0..9.
        """
        return self.scores(x, batch_size).argmax(axis=1)

    def predict_proba(self, x, batch_size=1000):
        """Class probabilities, float32 (N, 10), rows summing to 1.

        modern: softmax of the logits; lecun98: softmax of the negated RBF distances,
        P(i) proportional to exp(-y_i), the MAP posterior of eq. 9 without its
        rubbish-class term.

        Parameters
        ----------
        x, batch_size : as in `scores`
            The images, and how many of them go through one compiled call.

        Returns
        -------
        probabilities : ndarray
            float32 (N, 10), rows summing to 1.
        """
        return self._chunked_outputs(x, batch_size, proba=True)

    def activations(self, x):
        """Every layer's output for a batch, as new arrays.

        Parameters
        ----------
        x : float32 (N, 1, 32, 32) or uint8 (N, 28, 28)

        Returns
        -------
        dict of float32 arrays
            "input" (N, 1, 32, 32), the preprocessed images; "c1" (N, 6, 28, 28), "s2"
            (N, 6, 14, 14), "c3" (N, 16, 10, 10), "s4" (N, 16, 5, 5), "c5" (N, 120), "f6"
            (N, 84): each layer's output after its nonlinearity (modern: ReLU, the
            pooling layers' max of it; lecun98: the scaled tanh); "output" (N, 10):
            logits (modern) or RBF distances (lecun98), as `forward`.
        """
        x = _as_c(_as_model_input(x))
        n = x.shape[0]
        lecun = self.variant == "lecun98"
        keep = np.zeros(_kernels.workspace_floats(n, lecun), np.float32)
        out = np.empty((n, 10), np.float32)
        if n:
            self._plan.activations(x, keep, out, PIXEL_LUT)
        fields = _kernels.layout(n, lecun)

        def field(name, shape):
            off, size = fields[name]
            return keep[off:off + n * size].reshape((n,) + shape).copy()

        # uint8 digits were preprocessed into the workspace by the pass
        acts = {"input": field("x", (1, 32, 32)) if x.dtype == np.uint8 else x.copy()}
        if lecun:
            acts.update(c1=field("h1", (6, 28, 28)), s2=field("q1", (6, 14, 14)),
                        c3=field("h3", (16, 10, 10)), s4=field("q3", (16, 5, 5)))
        else:
            acts.update(c1=np.maximum(field("a1", (6, 28, 28)), 0), s2=field("p1", (6, 14, 14)),
                        c3=np.maximum(field("a3", (16, 10, 10)), 0), s4=field("p3", (16, 5, 5)))
        acts.update(c5=field("h5", (120,)), f6=field("h6", (84,)), output=out)
        return acts

    def loss(self, x, y):
        """Mean loss over a batch, without gradients.

        Parameters
        ----------
        x : ndarray
            float32 (N, 1, 32, 32) preprocessed images, or uint8 (N, 28, 28) digits
            (preprocessed inside the compiled pass).
        y : ndarray
            Integer labels (N,) in 0..9.

        Returns
        -------
        loss : float
            The mean loss (modern: cross-entropy; lecun98: the MAP loss).
        output : ndarray
            float32 (N, 10), as `forward` returns it.
        """
        x = _as_batch(x)
        n = x.shape[0]
        labels = _check_labels(y, n)
        out = np.empty((n, 10), np.float32)
        nt = self._threads_for(n)
        loss, _ = self._call(
            lambda ws, _: self._plan.train_pass(x, labels, out, None, ws, None, nt, PIXEL_LUT), n, nt)
        return loss, out

    def loss_and_grads(self, x, y):
        """Mean loss over the batch and its gradient for every parameter.

        Parameters
        ----------
        x : float32 (N, 1, 32, 32) or uint8 (N, 28, 28) raw digits, N >= 1
        y : integer (N,), labels in 0..9

        Returns
        -------
        loss : float
        grads : dict of float32 arrays keyed like `params` (copies)
        """
        x = _as_batch(x)
        loss, _, _ = self._train_pass(x, _check_labels(y, x.shape[0]))
        return loss, {k: v.copy() for k, v in self.grads.items()}

    def train_step(self, x, y, optimizer, *, label_smoothing=0.0):
        """Forward, backward and one optimizer update.

        Parameters
        ----------
        x, y : as in `loss`
            The batch: images and their labels.
        optimizer : lenet_fast.optim.Optimizer
            Updates the weights from the gradients.
        label_smoothing : float
            In [0, 1), modern only: the cross-entropy's target puts 1 - label_smoothing
            on the label and label_smoothing / 10 on every class.

        Returns
        -------
        float
            The batch's mean loss (with label smoothing, the smoothed loss).

        Notes
        -----
        The weights never become non-finite: with a NaN or infinite loss no update is
        made, and an update that would make a weight NaN or infinite (overflowing
        gradients or steps) is undone and reported as an infinite loss.

        After the call, `last_output` holds the batch's outputs and `last_correct` its
        number of correct predictions.
        """
        step = getattr(optimizer, "step", None)
        if not callable(step):
            raise TypeError("optimizer must be a lenet_fast.optim optimizer (with a step "
                            f"method), not {type(optimizer).__name__}")
        x = _as_batch(x)
        loss, correct, out = self._train_pass(x, _check_labels(y, x.shape[0]),
                                              _check_smoothing(label_smoothing, self.variant))
        if math.isfinite(loss):
            np.copyto(self._params_backup, self.flat_params)
            step(self.flat_params, self.flat_grads)
            if not np.isfinite(self.flat_params).all():
                np.copyto(self.flat_params, self._params_backup)
                loss = float("inf")
        self.last_output = out
        self.last_correct = correct
        return loss

    def gauss_newton_diagonal(self, x):
        """SDLM's curvature pass (lecun98; `lenet_fast.optim`): per parameter, the SUM over
        the samples of the diagonal Gauss-Newton estimate of d2E/dw^2.

        Parameters
        ----------
        x : float32 (N, 1, 32, 32) or uint8 (N, 28, 28), N >= 1

        Returns
        -------
        float32 vector like `flat_params` (>= 0; 0 for C3 weights the table leaves out)
        """
        if self.variant != "lecun98":
            raise ValueError("the curvature estimate needs the lecun98 variant (RBF output)")
        x = _as_batch(x)
        n = x.shape[0]
        hv = np.empty_like(self.flat_params)
        sq = np.square(self.flat_params)
        nt = self._threads_for(n)
        self._call(lambda ws, sl: self._plan.curvature(x, hv, sq, ws, sl, nt, PIXEL_LUT), n, nt,
                   slots=True)
        return hv

    def train_steps(self, images, labels, lrs, scale, residual=None):
        """Fused training steps (`lenet_fast.Trainer`'s loop for SDLM): for each of the
        ``len(lrs)`` steps, the next ``len(images) // len(lrs)`` uint8 digits are
        preprocessed, trained on and followed by ``flat_params -= lr * (scale *
        flat_grads)`` (made on ``flat_params + residual`` in double precision when a
        float32 `residual` vector is given, as the kernels' `scaled_sgd`), all in
        one compiled call.

        Parameters
        ----------
        images : uint8 array (N, 28, 28)
            The digits of all the steps, ``N // len(lrs)`` a step.
        labels : int array (N,)
            Their labels.
        lrs : float32 array (S,)
            Each step's learning rate.
        scale : float32 array like ``flat_params``
            Each parameter's step-size factor (SDLM's ``1 / (mu + h_kk)``).
        residual : float32 array like ``flat_params`` or None
            The parameters' rounding residual, updated in place.

        Returns
        -------
        steps : int
            Steps done; fewer than ``len(lrs)`` when a loss is not finite (that step
            makes no update).
        loss_sum : float
            Sum of batch loss x batch size over the steps done.
        correct : int
            Correct predictions over the steps done.
        """
        steps = len(lrs)
        n, rem = divmod(len(images), steps) if steps else (0, 0)
        if steps == 0 or n == 0 or rem:
            raise ValueError(f"{len(images)} images do not make {steps} equal batches")
        if residual is None:
            residual = _NO_RESIDUAL
        nt = self._threads_for(n)
        return self._call(
            lambda ws, sl: self._plan.train_steps(images, labels, lrs, scale, self.flat_params,
                                                  self.flat_grads, residual, PIXEL_LUT, ws, sl,
                                                  nt),
            n, nt, slots=True)

    def predicted(self, output):
        """The digits an `output` predicts.

        Parameters
        ----------
        output : ndarray
            float32 (N, 10), as `forward` returns it.

        Returns
        -------
        ndarray
            (N,): the largest logit (modern), the nearest RBF code (lecun98).
        """
        return output.argmin(axis=1) if self.variant == "lecun98" else output.argmax(axis=1)

    def correct(self, output, labels):
        """Number of correct predictions in a batch's `output`.

        Parameters
        ----------
        output : ndarray
            float32 (N, 10), as `forward` returns it (or `last_output`).
        labels : ndarray
            Integer labels (N,).

        Returns
        -------
        int
        """
        return int((self.predicted(output) == labels).sum())

    def config(self):
        """The constructor arguments that define the architecture.

        Returns
        -------
        dict
            variant, c3, seed and init.
        """
        return {"variant": self.variant, "c3": self.c3, "seed": self.seed, "init": self.init}

    def save(self, path, format=None):
        """Save weights and configuration, atomically (see `lenet_fast.load`).

        Parameters
        ----------
        path : str or os.PathLike
            The file to write (replaced as a whole, never left half-written).
        format : {None, "npz", "safetensors"}
            "npz": lenet_fast's own, with a checksum and the history; "safetensors"
            (`lenet_fast.safetensors_io`): weights and configuration, not the history,
            readable by any safetensors reader (needs ``lenet-fast[safetensors]``).
            None: safetensors for a path ending in ``.safetensors``, else npz.
        """
        if wants_safetensors(path, format):
            save_safetensors(self, path)
        else:
            save_model(self, path)

    def to_onnx(self, path, *, preprocess=True):
        """Export to an ONNX file (`lenet_fast.onnx_export`; needs ``lenet-fast[onnx]``).

        Parameters
        ----------
        path : str or os.PathLike
            The .onnx file to write, atomically.
        preprocess : bool
            True: the graph takes uint8 (N, 28, 28) digits; False: float32
            (N, 1, 32, 32). Its outputs are `forward`'s (N, 10) and the probabilities.

        Returns
        -------
        onnx.ModelProto
            The graph written.
        """
        return export_onnx(self, path, preprocess=preprocess)

    def __repr__(self):
        return (f"LeNet5(variant={self.variant!r}, c3={self.c3!r}, seed={self.seed}, "
                f"params={self.num_parameters():,})")


def load(path):
    """Load a model saved with `LeNet5.save` (or a training checkpoint's model).

    Reads lenet_fast's npz files (`lenet_fast.checkpoint`) and safetensors files
    (`lenet_fast.safetensors_io`, told by their first bytes). The model's ``history`` is
    the training history saved with it (a list of per-epoch dicts, as `Trainer.fit`
    returns; [] for files without one, and for safetensors files).

    Parameters
    ----------
    path : str or os.PathLike
        A .npz model file or training checkpoint, or a .safetensors model file.

    Returns
    -------
    LeNet5
        The model, with the file's weights, configuration and history.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    CheckpointError
        If the file is truncated, modified, foreign, of a newer format or has wrong shapes.
    ImportError
        For a safetensors file, without the safetensors package.
    """
    stored = read_safetensors(path) if is_safetensors(path) else read_model(path)
    config = stored.config
    model = LeNet5(config["variant"], c3=config["c3"], seed=config.get("seed", 0),
                   init=config.get("init", "auto"))
    model.params.update(stored.params)
    model.history = stored.history
    return model
