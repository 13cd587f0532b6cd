"""Stochastic diagonal Levenberg-Marquardt (SDLM), LeCun et al. 1998, appendix C.

Each parameter w_k gets its own step size

    eps_k = eta / (mu + h_kk),

where h_kk estimates the diagonal of the Gauss-Newton (GN) Hessian of the loss,
d2E/dw_k^2, averaged over a few hundred training samples (the paper: 500, re-drawn
before every pass over the training set), and the update is plain (per-sample) SGD
with those step sizes: ``w_k -= eps_k * dE/dw_k``.

The estimate (`estimate_hessian_diagonal`) back-propagates second derivatives
through the network the way the paper describes:

* the squashing function's second derivative is dropped (Gauss-Newton):
  ``d2E/da^2 = f'(a)^2 d2E/dx^2`` for x = f(a);
* through a convolution or full layer ``a_i = sum_j w_ij x_j + b_i``, the
  off-diagonal terms are dropped: ``d2E/dx_j^2 = sum_i w_ij^2 d2E/da_i^2``;
* a weight's estimate sums over every connection that shares it:
  ``d2E/dw^2 = sum x_j^2 d2E/da_i^2``, ``d2E/db^2 = sum d2E/da_i^2``;
* a subsampling unit ``a = coef * s + bias``, s the sum of its 2x2 block:
  ``d2E/dcoef^2 = sum s^2 d2E/da^2``, ``d2E/dbias^2 = sum d2E/da^2`` and each of
  the 4 inputs gets ``d2E/dx^2 = coef^2 d2E/da^2``.

So each layer's second-derivative pass is its ordinary backward pass with squared
arguments, and runs on the same compiled kernels: the convolution / full layer
backward with ``(dy = d2E/da^2, x = x^2, w = w^2)`` returns ``dx = d2E/dx^2`` and
``dw = sum x^2 d2E/da^2``; the subsampling backward with ``coef^2`` returns the
input's ``d2E/dx^2``, and the block sums s come from the subsampling forward with
coefficient 1 and bias 0. The whole pass is one compiled call,
`lenet_fast.LeNet5.gauss_newton_diagonal`; its NumPy twin is
`lenet_fast.reference.lecun98_hessian_diagonal` (built from the per-layer
`reference.conv_backward_second`, `subsample_backward_second`,
`linear_backward_second` and `squash_second`).

The loss's curvature (a documented choice)
------------------------------------------
The lecun98 model is trained with the MAP criterion of eq. 9,
``E = y_D + log(e^-j + sum_i e^-y_i)``, y_i = sum_j (x_j - c_ij)^2 the RBF
distances of the F6 outputs x. Its curvature is taken to be the Gauss-Newton
curvature of the data term y_D alone (the MSE criterion of eq. 8, the one the
paper's appendix C derives the method for): ``d2 y_D / dx_j^2 = 2``, exact and
diagonal, the same for every sample and label. The second term of eq. 9 is left
out: it is nearly constant (about -j) while every distance is above j, as at the
start of training; once the correct class dominates it nearly cancels y_D, and
dropping it then over-estimates the curvature, which only makes the steps more
cautious. Its own Gauss-Newton matrix is not diagonal in x (it couples all 84 F6
outputs through the 10 class distances), so it would not fit the method's
diagonal back-propagation anyway. Labels are therefore not needed.

The paper's step size, the initialisation and this model
--------------------------------------------------------
Everything above is the paper's. Two settings are not:

* Initialisation. With U(+-2.4/F) (the paper's formula as printed, ``init="fanin"``)
  the weighted sums of C5 and F6 start with a std of ~0.03, most h_kk are far below
  mu, so eps_k is close to eta / mu, and the paper's eta = 0.0005 saturates C3, C5 and
  F6 within the first few samples (also when h is re-estimated after 1, 2, 4, ...
  samples, or after a first pass at a small eta); the smaller step sizes that train
  from there end well above the paper's error. The paper motivates its
  initialisation by wanting the weighted sums' standard deviation "in the same range
  for each unit" and within the sigmoid's operating region: U(+-2.4/sqrt(F))
  (``init="fanin-sqrt"``; the default of ``lenet-fast train --optimizer sdlm``) does
  exactly that, and with it SDLM trains to about the paper's figure. Train
  ``LeNet5("lecun98", init="fanin-sqrt")``.
* Step size. With that initialisation, the paper's schedule scaled by 0.4 (eta =
  0.0002 for passes 1-2, down to 0.000004 after pass 12) tested best of the scales
  tried (0.06, 0.2, 0.4, 0.6 and the paper's 1, which is unstable here). So
  ``SDLM()`` and ``lenet-fast train --optimizer sdlm`` default to ``lr=0.0002``
  (`lenet_fast.optim.DEFAULT_ETA`); ``lr=lenet_fast.optim.PAPER_ETA`` is the paper's
  value. The figures are the README's.

Precision: the update (`lenet_fast.optim.SDLM`) is made on double-precision weights,
held as the float32 weights plus a float32 residual (the optimizer state
``residual``; `lf_update.scaled_sgd_compensated`). At the last passes' rate most of
the nonzero per-sample steps of a trained model are below half a float32 ulp of their
weight, so plain float32 updates would leave the last passes mostly frozen.

Only the ``"lecun98"`` variant is supported: SDLM is the paper's method for the
paper's network (`ValueError` for ``"modern"``).

Batches: with batch size 1 the update is the paper's per-sample SGD. With larger
batches the gradient is the batch mean the model returns, and h (an average over
samples) is the matching curvature of the batch-mean loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ..._isa import kernels as _kernels
from ..._compute._checks import as_float as _as_float
from ..._compute._checks import as_int
from ..._compute._checks import as_int as _as_int
from ._base import Optimizer, _hyperparameter

__all__ = [
    "DEPARTURES",
    "PAPER_SAMPLES",
    "estimate_hessian_diagonal",
    "hessian_views",
    "layer_means",
    "SDLM",
    "PAPER_ETA",
    "DEFAULT_ETA",
]

#: Samples the paper draws to re-estimate h before each pass.
PAPER_SAMPLES = 500

#: How SDLM training here departs from the paper, and why (the module docstring has
#: the reasoning): one dict per departure, keys ``what``, ``paper``, ``here``, ``why``.
#: ``lenet-fast reproduce`` prints them beside its results; its tests check them against
#: the recipe (`lenet_fast.recipes.SDLM_RECIPE`, ``SDLM_INIT``).
DEPARTURES = (
    {"what": "initial weights",
     "paper": "uniform in +-2.4/F (F: the unit's fan-in)",
     "here": "uniform in +-2.4/sqrt(F) (init 'fanin-sqrt')",
     "why": "with the paper's step sizes, +-2.4/F saturates C3, C5 and F6 within the first "
            "few samples (also with h re-estimated after 1, 2, 4, ... samples), and the "
            "smaller step sizes that train from there end near 1.2% test error at best; "
            "+-2.4/sqrt(F) keeps each unit's weighted sum in the squashing function's "
            "operating region, which is what the paper asks of its initialisation"},
    {"what": "step sizes (eta by pass)",
     "paper": "0.0005 (passes 1-2), 0.0002 (3-5), 0.0001 (6-8), 0.00005 (9-12), 0.00001",
     "here": "the paper's schedule times 0.4 (eta 0.0002 for passes 1-2, ...)",
     "why": "of the scales tried (0.06, 0.2, 0.4, 0.6 and the paper's 1), 0.4 tested best; "
            "the paper's own rates are unstable with this network"},
    {"what": "curvature of the loss",
     "paper": "SDLM derived for the MSE criterion (eq. 8); training with the MAP criterion "
              "(eq. 9)",
     "here": "the Gauss-Newton curvature of the data term y_D alone (d2/dx2 = 2)",
     "why": "the MAP term's Gauss-Newton matrix couples all 84 F6 outputs, so it does not "
            "fit the method's diagonal back-propagation; leaving it out over-estimates the "
            "curvature once the correct class dominates, which only makes steps more "
            "cautious"},
    {"what": "precision of the updates",
     "paper": "not stated",
     "here": "double precision (float32 weights plus a float32 residual)",
     "why": "at the last passes' rate about three quarters of the per-sample steps are below "
            "half a float32 ulp of their weight: float32 updates would freeze the last "
            "passes"},
)


def _check_variant(model):
    if getattr(model, "variant", None) != "lecun98":
        raise ValueError(
            f"SDLM's Hessian estimate is implemented for the paper's network "
            f"(variant 'lecun98'), not {getattr(model, 'variant', model)!r}; train the "
            "modern variant with 'sgd' or 'adam'")


def hessian_views(model, h):
    """Views of the flat vector h (laid out like ``model.flat_params``), keyed like ``model.params``.

    Parameters
    ----------
    model : LeNet5
        The model whose parameter layout `h` follows.
    h : ndarray, float32 (P,)
        A vector of the shape of ``model.flat_params``.

    Returns
    -------
    dict of str to ndarray
        Views into `h`, each of its parameter's shape.
    """
    h = np.asarray(h)
    if h.shape != model.flat_params.shape:
        raise ValueError(f"h must have shape {model.flat_params.shape}, got {h.shape}")
    base = model.flat_params.ctypes.data
    out = {}
    for name, view in model.params.items():
        offset = (view.ctypes.data - base) // view.itemsize
        out[name] = h[offset:offset + view.size].reshape(view.shape)
    return out


def estimate_hessian_diagonal(model, x, labels=None, *, batch_size=500):
    """The paper's diagonal Gauss-Newton estimate of d2E/dw_k^2, averaged over x.

    Parameters
    ----------
    model : LeNet5 (variant "lecun98")
        Runs with ``model.n_threads`` threads; the result does not depend on them.
    x : uint8 (N, 28, 28) digits or float32 (N, 1, 32, 32) preprocessed, N >= 1
        The samples (the paper: 500 training images); digits are preprocessed inside
        the compiled pass, with the same bits as `lenet_fast.datasets.preprocess`.
    labels : ignored
        The curvature is that of the data term y_D (module docstring), the same for
        every label; accepted (and shape-checked) for API symmetry.
    batch_size : int
        Samples per forward/second-derivative pass (memory bound, not the result's:
        per-pass sums are accumulated in float64).

    Returns
    -------
    ndarray
        float32, the shape of ``model.flat_params``: h >= 0; exactly 0 for C3 weights
        the connection table leaves out.

    Notes
    -----
    Each pass is one compiled call (``LeNet5.gauss_newton_diagonal``: the backward
    kernels with squared weights and inputs); ``reference.lecun98_hessian_diagonal``
    is its NumPy twin.
    """
    _check_variant(model)
    digits = isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.shape[1:] == (28, 28)
    if not digits and not (isinstance(x, np.ndarray) and x.dtype == np.float32
                           and x.shape[1:] == (1, 32, 32)):
        raise ValueError("x must be uint8 digits (N, 28, 28) or a float32 array of shape "
                         "(N, 1, 32, 32) (lenet_fast.datasets.preprocess)")
    n = x.shape[0]
    if n == 0:
        raise ValueError("x holds no samples")
    if labels is not None and np.shape(labels) != (n,):
        raise ValueError(f"labels must have shape ({n},), got {np.shape(labels)}")
    batch_size = as_int("batch_size", batch_size, ge=1)
    total = np.zeros(model.flat_params.shape, np.float64)
    for start in range(0, n, batch_size):
        total += model.gauss_newton_diagonal(x[start:start + batch_size])
    total /= n
    return total.astype(np.float32)


def layer_means(model, h):
    """The mean of h over each parameter array, keyed like ``model.params`` (for logs).

    Parameters
    ----------
    model, h : as in `hessian_views`

    Returns
    -------
    dict of str to float
    """
    return {name: float(v.mean()) for name, v in hessian_views(model, h).items()}



#: The paper's eta for passes 1-2 of SDLM (its schedule:
#: `lenet_fast.schedules.LeCunSDLMSchedule`).
PAPER_ETA = 0.0005

#: SDLM's default eta: the paper's scaled by 0.4 (`lenet_fast.optim` explains why).
DEFAULT_ETA = 0.0002



class SDLM(Optimizer):
    """Stochastic diagonal Levenberg-Marquardt (LeCun et al. 1998, appendix C).

    ``p_k -= lr / (mu + h_k) * g_k`` with h the diagonal Gauss-Newton estimate
    (`lenet_fast.optim.estimate_hessian_diagonal`). ``lr`` is the paper's eta; the paper's schedule
    over passes is `lenet_fast.schedules.LeCunSDLMSchedule` (name ``"lecun98"``, the
    default when this optimizer is chosen by name in the CLI).

    `before_epoch`, which `lenet_fast.Trainer` calls at the start of every pass,
    re-estimates h on ``samples`` training images drawn with the generator it is
    given. Until h is first estimated (or set with `set_hessian`) it is 0, i.e. the
    update is SGD with learning rate ``lr / mu``.

    Parameters
    ----------
    lr : float, default 0.0002 (`DEFAULT_ETA`)
        eta, the global step size (``>= 0``); the paper's is 0.0005 (`PAPER_ETA`),
        unstable with this model (`lenet_fast.optim`).
    mu : float, default 0.02
        Keeps the steps bounded where the curvature is small (``> 0``).
    samples : int, default 500
        Training images drawn for each re-estimate of h.

    Notes
    -----
    The state dict holds ``mu``, ``samples`` and the float32 vector ``hessian``
    (also before the first step, once h has been set), so a resumed run continues
    bit-for-bit.
    """

    name: ClassVar[str] = "sdlm"
    _HPARAM_KINDS: ClassVar[dict[str, str]] = {"mu": "f", "samples": "f"}
    #: The schedule the paper uses with this optimizer (`lenet_fast.schedules.SCHEDULES`).
    default_schedule: ClassVar[str] = "lecun98"

    def __init__(self, lr: float = DEFAULT_ETA, mu: float = 0.02,
                 samples: int = PAPER_SAMPLES) -> None:
        super().__init__(lr)
        self._scale: np.ndarray | None = None
        self._hp = self._check_hparams(mu=mu, samples=samples)

    @classmethod
    def _check_hparams(cls, *, mu: Any, samples: Any) -> dict[str, Any]:
        mu = _as_float("mu", mu, gt=0.0)
        if isinstance(samples, float) and samples.is_integer():  # from a state dict
            samples = int(samples)
        samples = _as_int("samples", samples, ge=1)
        return {"mu": mu, "samples": samples}

    mu = _hyperparameter("mu", "The damping term mu (read-only).")
    samples = _hyperparameter("samples", "Training images per re-estimate of h (read-only).")

    @property
    def hessian(self) -> np.ndarray | None:
        """A copy of the current h (float32), or None before it is set or a first step."""
        h = self._buffers.get("hessian")
        return None if h is None else h.copy()

    @classmethod
    def _buffer_names_for(cls, hp: Mapping[str, Any]) -> tuple[str, ...]:
        return ("hessian", "residual")

    def _update(self, params: np.ndarray, grads: np.ndarray, t: int) -> None:
        _kernels.scaled_sgd(params, grads, self._step_scale(), self._lr, self._buffers["residual"])

    def _step_scale(self) -> np.ndarray:
        """``1 / (mu + h)`` (float32), recomputed only when h changes."""
        if self._scale is None:
            h = self._buffers.get("hessian")
            if h is None:
                h = np.zeros(self._size, np.float32)
            self._scale = (np.float32(1.0) / (h + np.float32(self._hp["mu"]))).astype(np.float32)
        return self._scale

    def fused_update(self, params: np.ndarray, grads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bind to ``params``/``grads`` and hand out what a compiled loop updates with.

        Parameters
        ----------
        params, grads : ndarray
            The model's flat float32 parameter and gradient vectors.

        Returns
        -------
        scale : ndarray
            float32, one entry per parameter: the factor ``1 / (mu + h)``.
        residual : ndarray
            float32, the residual of the compensated (double precision) sum.

        Notes
        -----
        For `lenet_fast.Trainer`'s compiled loop, which makes the update of `step`
        itself (the same kernel, `lf_update.scaled_sgd_compensated`) and then calls
        `advance`. The factor is valid until h next changes.
        """
        if params is not self._bound_params or grads is not self._bound_grads:
            self._bind(params, grads)
        return self._step_scale(), self._buffers["residual"]

    def advance(self, steps: int) -> None:
        """Count the updates that a compiled loop made with `fused_update`'s factor.

        Parameters
        ----------
        steps : int
            How many updates were made.
        """
        self._step += int(steps)

    # -- h ---------------------------------------------------------------
    def set_hessian(self, h: np.ndarray) -> None:
        """Use the curvature estimate `h` from now on.

        Parameters
        ----------
        h : ndarray
            float32 (P,), finite, >= 0, one entry per parameter.
        """
        if not isinstance(h, np.ndarray) or h.dtype != np.float32 or h.ndim != 1:
            raise TypeError("h must be a 1-D float32 numpy.ndarray")
        if self._size is not None and h.shape[0] != self._size:
            raise ValueError(f"h has {h.shape[0]} entries; the optimizer is bound to "
                             f"{self._size} parameters")
        if not np.all(np.isfinite(h)) or (h.size and h.min() < 0):
            raise ValueError("h must be finite and >= 0")
        buf = self._buffers.get("hessian")
        if buf is None or buf.shape != h.shape:
            self._buffers["hessian"] = h.copy()
        else:
            np.copyto(buf, h)
        res = self._buffers.get("residual")
        if res is None or res.shape != h.shape:
            self._buffers["residual"] = np.zeros_like(h)
        self._size = h.shape[0]
        self._scale = None

    def before_epoch(self, model, images, labels, epoch, rng) -> None:
        """Re-estimate h on `samples` training images drawn (without replacement) with `rng`.

        Called by `lenet_fast.Trainer` at the start of each pass.

        Parameters
        ----------
        model : LeNet5
            The lecun98 model being trained.
        images : ndarray
            uint8 (N, 28, 28) digits (or preprocessed float32 (N, 1, 32, 32)).
        labels : ndarray
            Not needed by the estimate.
        epoch : int
            Not needed by the estimate.
        rng : numpy.random.Generator
            Draws the samples.
        """
        n = len(images)
        idx = rng.choice(n, size=min(self._hp["samples"], n), replace=False)
        self.set_hessian(estimate_hessian_diagonal(model, images[idx]))

    # -- state -------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """The optimizer's state, with h when it was estimated before the first step.

        Returns
        -------
        dict of str to ndarray
        """
        d = super().state_dict()
        h = self._buffers.get("hessian")
        if self._step == 0 and h is not None:  # estimated before the first step
            d["hessian"] = h.copy()
            d["num_params"] = np.array(h.shape[0], dtype=np.int64)
        return d

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state from `state_dict`; nothing changes unless all of it loads.

        Parameters
        ----------
        state : mapping of str to array-like
            As `state_dict` returns it.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a mapping, got {type(state).__name__}")
        self._scale = None
        if "hessian" not in state or "step" not in state or int(np.asarray(state["step"])) > 0:
            super().load_state_dict(state)
            return
        # step 0 with an h estimated before the first step: validate, then commit.
        h = np.asarray(state["hessian"])
        rest = {k: v for k, v in state.items() if k != "hessian"}
        num_params = int(np.asarray(rest.get("num_params", -1)))
        if h.dtype != np.float32 or h.shape != (num_params,):
            raise ValueError(f"buffer 'hessian' must be float32 of shape ({num_params},), "
                             f"got {h.dtype} {h.shape}")
        if not np.all(np.isfinite(h)) or (h.size and h.min() < 0):
            raise ValueError("buffer 'hessian' must be finite and >= 0")
        super().load_state_dict(rest)
        self._buffers = {"hessian": np.array(h, dtype=np.float32, order="C", copy=True),
                         "residual": np.zeros(num_params, np.float32)}
        self._size = num_params

