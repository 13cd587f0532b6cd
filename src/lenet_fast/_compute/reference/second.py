"""Second derivatives for SDLM: the diagonal Gauss-Newton pass of the paper's
network, layer by layer and whole (`lecun98_hessian_diagonal`)."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._common import (
    KERNEL,
    TANH_A,
    TANH_S,
    _blocks,
    _check_shape,
    _conv_grad_args,
    _dense_grad_args,
    _float_dtype,
    _masked_weights,
    _subsample_grad_args,
)
from .layers import conv_forward, linear_forward, subsample_forward
from .outputs import scaled_tanh_forward

# --------------------------------------------------------------------------- second derivatives
# The diagonal Gauss-Newton back-propagation of stochastic diagonal Levenberg-Marquardt
# (paper, appendix C): the twins of `lenet_fast.optim`. Each returns the per-sample
# second derivatives of a layer's inputs and the batch SUM of its parameters'.


def squash_second(d2x, y):
    """``d2E/da^2 = f'(a)^2 d2E/dx^2`` for ``x = f(a) = A tanh(S a)``, from ``y = f(a)``.

    ``f'(a) = A S (1 - (y / A)^2)``; the ``f''`` term is dropped (Gauss-Newton).

    Parameters
    ----------
    d2x : ndarray, shape of y, float32 or float64
        Second derivatives with respect to the squashed outputs.
    y : ndarray, any shape, float32 or float64
        The squashed outputs ``f(a)``.

    Returns
    -------
    ndarray, shape of y, dtype ``result_type(d2x, y)``
    """
    d2x, y = np.asarray(d2x), np.asarray(y)
    _check_shape("d2x", d2x, y.shape)
    dt = _float_dtype(d2x, y)
    A, S = dt.type(TANH_A), dt.type(TANH_S)
    t = y.astype(dt, copy=False) / A
    fprime = A * S * (1 - t * t)
    return d2x.astype(dt, copy=False) * fprime * fprime


def conv_backward_second(d2y, x, w, table=None):
    """Second-derivative pass of :func:`conv_forward` (connections' cross terms dropped).

    Parameters
    ----------
    d2y : ndarray (N, Cout, H - 4, W - 4)
        d2E/da^2 of the outputs.
    x : ndarray (N, Cin, H, W)
    w : ndarray (Cout, Cin, 5, 5)
    table : bool (Cin, Cout) or None

    Returns
    -------
    d2x : (N, Cin, H, W)
        ``d2x[n, c, u, v] = sum over (o, p, q) with u = i + p, v = j + q of
        w[o, c, p, q]^2 d2y[n, o, i, j]``.
    hw : (Cout, Cin, 5, 5)
        ``sum_{n, i, j} x[n, c, i + p, j + q]^2 d2y[n, o, i, j]``, 0 where unconnected.
    hb : (Cout,)
        ``sum_{n, i, j} d2y[n, o, i, j]``.
    """
    d2y, x, (n, cin, cout, oh, ow) = _conv_grad_args("d2y", d2y, x, w)
    dt = d2y.dtype
    w2 = _masked_weights(w, table, dt) ** 2
    hb = d2y.sum(axis=(0, 2, 3))
    x2_windows = sliding_window_view(x * x, (KERNEL, KERNEL), axis=(2, 3))  # n c i j p q
    hw = np.einsum("noij,ncijpq->ocpq", d2y, x2_windows)
    if table is not None:
        hw = hw * np.asarray(table, dtype=bool).T[:, :, None, None]
    # d2x: the "full" correlation of d2y (zero-padded by 4) with the 180-degree turned w^2.
    pad = np.zeros((n, cout, oh + 2 * (KERNEL - 1), ow + 2 * (KERNEL - 1)), dtype=dt)
    pad[:, :, KERNEL - 1:KERNEL - 1 + oh, KERNEL - 1:KERNEL - 1 + ow] = d2y
    d_windows = sliding_window_view(pad, (KERNEL, KERNEL), axis=(2, 3))  # n o u v p q
    d2x = np.einsum("nouvpq,ocpq->ncuv", d_windows, w2[:, :, ::-1, ::-1])
    return (np.ascontiguousarray(d2x, dtype=dt), np.ascontiguousarray(hw, dtype=dt),
            np.ascontiguousarray(hb, dtype=dt))


def subsample_backward_second(d2y, x, coef):
    """Second-derivative pass of :func:`subsample_forward` (``a = coef * s + bias``).

    Parameters
    ----------
    d2y : ndarray, shape (N, C, H // 2, W // 2), float32 or float64
        Second derivatives with respect to the layer's outputs.
    x : ndarray, shape (N, C, H, W), float32 or float64
        The forward input.
    coef : ndarray, shape (C,), float32 or float64
        The trainable coefficients.

    Returns
    -------
    d2x : (N, C, H, W)
        ``coef[c]^2 d2y`` at each of a unit's 4 inputs.
    hcoef : (C,)
        ``sum s^2 d2y`` per map, s the 2x2 block sum.
    hbias : (C,)
        ``sum d2y`` per map.
    """
    d2y, x, coef = _subsample_grad_args("d2y", d2y, x, coef)
    (n, c, h, w), dt = x.shape, d2y.dtype
    s = _blocks(x).sum(axis=-1)
    hcoef = (s * s * d2y).sum(axis=(0, 2, 3))
    hbias = d2y.sum(axis=(0, 2, 3))
    g = coef[None, :, None, None] ** 2 * d2y
    d2x = np.zeros((n, c, h, w), dtype=dt)
    for du in range(2):
        for dv in range(2):
            d2x[:, :, du:2 * (h // 2):2, dv:2 * (w // 2):2] = g
    return d2x, np.ascontiguousarray(hcoef, dtype=dt), np.ascontiguousarray(hbias, dtype=dt)


def linear_backward_second(d2y, x, w):
    """Second-derivative pass of :func:`linear_forward`.

    Parameters
    ----------
    d2y : ndarray, shape (N, O), float32 or float64
        Second derivatives with respect to the layer's outputs.
    x : ndarray, shape (N, I), float32 or float64
        The forward input.
    w : ndarray, shape (O, I), float32 or float64
        The weights.

    Returns
    -------
    d2x : (N, I)
        ``sum_o w[o, i]^2 d2y[n, o]``.
    hw : (O, I)
        ``sum_n x[n, i]^2 d2y[n, o]``.
    hb : (O,)
        ``sum_n d2y[n, o]``.
    """
    d2y, x, w = _dense_grad_args("d2y", d2y, x, "w", w)
    return d2y @ (w * w), d2y.T @ (x * x), d2y.sum(axis=0)


def lecun98_hessian_diagonal(params, x, table):
    """The paper's SDLM curvature estimate for the lecun98 network, averaged over x.

    Forward pass with this module's functions, then the second derivatives from the
    RBF data term (``d2 y_D / dx_j^2 = 2`` at the F6 outputs, see `lenet_fast.optim`)
    back through F6, C5, S4, C3, S2 and C1.

    Parameters
    ----------
    params : dict
        The lecun98 parameters, keyed like ``LeNet5.params``.
    x : ndarray (N, 1, 32, 32)
    table : bool (6, 16)
        C3's connection table.

    Returns
    -------
    dict
        Per parameter, the mean over the N samples of the estimate of d2E/dw^2.
    """
    p = {k: np.asarray(v) for k, v in params.items()}
    x = np.asarray(x)
    n = x.shape[0]
    f = scaled_tanh_forward
    h1 = f(conv_forward(x, p["c1.weight"], p["c1.bias"]))
    q1 = f(subsample_forward(h1, p["s2.coef"], p["s2.bias"]))
    h3 = f(conv_forward(q1, p["c3.weight"], p["c3.bias"], table))
    q3 = f(subsample_forward(h3, p["s4.coef"], p["s4.bias"]))
    h5 = f(conv_forward(q3, p["c5.weight"], p["c5.bias"])).reshape(n, -1)
    h6 = f(linear_forward(h5, p["f6.weight"], p["f6.bias"]))
    out = {}
    d = squash_second(np.full(h6.shape, 2.0, dtype=h6.dtype), h6)
    d, out["f6.weight"], out["f6.bias"] = linear_backward_second(d, h5, p["f6.weight"])
    d = squash_second(d, h5).reshape(n, -1, 1, 1)
    d, out["c5.weight"], out["c5.bias"] = conv_backward_second(d, q3, p["c5.weight"])
    d = squash_second(d, q3)
    d, out["s4.coef"], out["s4.bias"] = subsample_backward_second(d, h3, p["s4.coef"])
    d = squash_second(d, h3)
    d, out["c3.weight"], out["c3.bias"] = conv_backward_second(d, q1, p["c3.weight"], table)
    d = squash_second(d, q1)
    d, out["s2.coef"], out["s2.bias"] = subsample_backward_second(d, h1, p["s2.coef"])
    d = squash_second(d, h1)
    _, out["c1.weight"], out["c1.bias"] = conv_backward_second(d, x, p["c1.weight"])
    return {k: v / n for k, v in out.items()}
