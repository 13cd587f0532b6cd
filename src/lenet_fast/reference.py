"""Plain NumPy reference implementation of the LeNet-5 layers.

This module is the slow, readable twin of :mod:`lenet_fast.ops`: every function has the
same signature as its fast counterpart and is written independently in plain,
vectorized NumPy, so the two can be checked against each other.  It never imports or
calls any compiled ``lenet_fast`` code.

The layers follow

    Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-Based Learning Applied to
    Document Recognition", Proceedings of the IEEE, 86(11):2278-2324, 1998.

Conventions
-----------
* Arrays are NCHW (``(N, C, H, W)``) for images and ``(N, features)`` for vectors.
* Convolutions are 5x5, stride 1, no padding ("valid") cross-correlations (no kernel
  flip, like ``torch.nn.functional.conv2d``), with an optional connection table
  ``table[ci, co]`` (LeNet-5's C3 uses a sparse one).
* Subsampling / pooling is 2x2 with stride 2.  The output has ``H // 2`` rows and
  ``W // 2`` columns; with an odd size the last row / column is ignored (its
  gradient is 0).
* float32 and float64 are accepted; results are computed in and returned as
  ``np.result_type`` of the floating-point inputs (float32 with float64 gives
  float64).  Outputs are always new arrays.
* The functions that share a name with a :mod:`lenet_fast.ops` function accept an
  ``n_threads`` keyword and ignore it, for signature parity (the dense layer, the
  activations, the losses and the second-derivative functions have no ``n_threads``).
* Backward functions return the gradients of the scalar ``sum(dy * forward(...))``.

Validation is minimal (shape checks raising ``ValueError``); this is not the
user-facing API.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "TANH_A",
    "TANH_S",
    "KERNEL",
    "conv_forward",
    "conv_backward",
    "subsample_forward",
    "subsample_backward",
    "maxpool_forward",
    "maxpool_backward",
    "linear_forward",
    "linear_backward",
    "relu_forward",
    "relu_backward",
    "scaled_tanh_forward",
    "scaled_tanh_backward",
    "softmax_cross_entropy",
    "rbf_forward",
    "rbf_backward",
    "map_loss",
    "squash_second",
    "conv_backward_second",
    "subsample_backward_second",
    "linear_backward_second",
    "lecun98_hessian_diagonal",
]

# The twin keeps its own copy of the paper's constants (it imports only numpy); the
# compiled side's are `lenet_fast.tables.TANH_A` / `TANH_S` (and their C copy in
# csrc/_net.pxi); tests/test_reference.py checks that all three agree.
#: Amplitude A of LeCun's squashing function f(a) = A tanh(S a) (paper, appendix A).
TANH_A = 1.7159
#: Slope S of LeCun's squashing function f(a) = A tanh(S a).
TANH_S = 2.0 / 3.0
#: Side of the square convolution kernels.
KERNEL = 5


# --------------------------------------------------------------------------- helpers


def _float_dtype(*arrays):
    """Common floating dtype of `arrays` (float32 stays float32, mixed -> float64)."""
    return np.result_type(*arrays, np.float32)


def _check_ndim(name, a, ndim):
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")


def _check_shape(name, a, shape):
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {a.shape}")


def _masked_weights(w, table, dtype):
    """Weights (Cout, Cin, 5, 5) in `dtype` with unconnected (ci, co) pairs set to 0."""
    w = np.asarray(w, dtype=dtype)
    if table is None:
        return w.copy()
    table = np.asarray(table, dtype=bool)
    cout, cin = w.shape[:2]
    _check_shape("table", table, (cin, cout))
    return np.where(table.T[:, :, None, None], w, np.zeros((), dtype=dtype))


def _conv_shapes(x, w):
    _check_ndim("x", x, 4)
    _check_ndim("w", w, 4)
    n, cin, h, wd = x.shape
    cout = w.shape[0]
    _check_shape("w", w, (cout, cin, KERNEL, KERNEL))
    if h < KERNEL or wd < KERNEL:
        raise ValueError(f"x spatial size must be at least {KERNEL}x{KERNEL}, got {x.shape}")
    return n, cin, cout, h - KERNEL + 1, wd - KERNEL + 1


def _blocks(x):
    """View the 2x2 blocks of x (N, C, H, W) as (N, C, H//2, W//2, 4), row-major taps.

    The last axis holds the block values in the order (0,0), (0,1), (1,0), (1,1).
    A copy is returned (odd trailing rows / columns are dropped).
    """
    n, c, h, w = x.shape
    oh, ow = h // 2, w // 2
    x = x[:, :, : 2 * oh, : 2 * ow]
    b = x.reshape(n, c, oh, 2, ow, 2).transpose(0, 1, 2, 4, 3, 5)
    return b.reshape(n, c, oh, ow, 4)


def _unblocks(b, h, w):
    """Inverse of `_blocks`: (N, C, OH, OW, 4) -> (N, C, H, W), zeros in odd leftovers."""
    n, c, oh, ow, _ = b.shape
    out = np.zeros((n, c, h, w), dtype=b.dtype)
    out[:, :, : 2 * oh, : 2 * ow] = (
        b.reshape(n, c, oh, ow, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, 2 * oh, 2 * ow)
    )
    return out


def _check_labels(labels, n, k):
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be an integer array of shape ({n},), got {labels.dtype} {labels.shape}"
        )
    if n and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must lie in [0, {k})")
    return labels.astype(np.intp)


# --------------------------------------------------------------------------- convolution


def conv_forward(x, w, b, table=None, *, n_threads=None):
    """5x5 valid convolution (cross-correlation) with an optional connection table.

    ``y[n, o] = b[o] + sum_{ci : table[ci, o]} xcorr(x[n, ci], w[o, ci])`` where
    ``xcorr(a, k)[i, j] = sum_{p, q} a[i + p, j + q] * k[p, q]`` (no kernel flip).

    Parameters
    ----------
    x : ndarray, shape (N, Cin, H, W), float32 or float64
        Input maps.
    w : ndarray, shape (Cout, Cin, 5, 5), float32 or float64
        Kernels. Entries of unconnected (ci, o) pairs are ignored (treated as 0).
    b : ndarray, shape (Cout,), float32 or float64
        Biases.
    table : ndarray, shape (Cin, Cout), bool, or None
        Connection table: ``table[ci, o]`` says whether input map ``ci`` feeds output
        map ``o``. None means fully connected.
    n_threads : ignored
        Accepted for signature parity with :func:`lenet_fast.ops.conv_forward`.

    Returns
    -------
    y : ndarray, shape (N, Cout, H - 4, W - 4), dtype ``result_type(x, w, b)``
    """
    x, w, b = np.asarray(x), np.asarray(w), np.asarray(b)
    _, _, cout, _, _ = _conv_shapes(x, w)
    _check_shape("b", b, (cout,))
    dt = _float_dtype(x, w, b)
    x = x.astype(dt, copy=False)
    wm = _masked_weights(w, table, dt)
    # windows[n, ci, i, j, p, q] = x[n, ci, i + p, j + q]
    windows = sliding_window_view(x, (KERNEL, KERNEL), axis=(2, 3))
    # sum over ci, p, q  ->  (N, OH, OW, Cout)
    y = np.tensordot(windows, wm, axes=([1, 4, 5], [1, 2, 3]))
    y = y.transpose(0, 3, 1, 2) + b.astype(dt)[None, :, None, None]
    return np.ascontiguousarray(y, dtype=dt)


def conv_backward(dy, x, w, table=None, *, n_threads=None):
    """Gradients of ``sum(dy * conv_forward(x, w, b, table))``.

    Parameters
    ----------
    dy : ndarray, shape (N, Cout, H - 4, W - 4), float32 or float64
        Gradient with respect to the output.
    x : ndarray, shape (N, Cin, H, W), float32 or float64
        Forward input.
    w : ndarray, shape (Cout, Cin, 5, 5), float32 or float64
        Forward kernels (unconnected entries are ignored).
    table : ndarray, shape (Cin, Cout), bool, or None
        Connection table, as in :func:`conv_forward`.
    n_threads : ignored

    Returns
    -------
    dx : ndarray, shape (N, Cin, H, W)
    dw : ndarray, shape (Cout, Cin, 5, 5)
        Exactly 0 where the table is False.
    db : ndarray, shape (Cout,)
        All in dtype ``result_type(dy, x, w)``.
    """
    dy, x, w = np.asarray(dy), np.asarray(x), np.asarray(w)
    n, cin, cout, oh, ow = _conv_shapes(x, w)
    _check_shape("dy", dy, (n, cout, oh, ow))
    dt = _float_dtype(dy, x, w)
    dy = dy.astype(dt, copy=False)
    x = x.astype(dt, copy=False)
    wm = _masked_weights(w, table, dt)

    db = dy.sum(axis=(0, 2, 3))

    # dw[o, ci, p, q] = sum_{n, i, j} dy[n, o, i, j] * x[n, ci, i + p, j + q]
    windows = sliding_window_view(x, (KERNEL, KERNEL), axis=(2, 3))
    dw = np.tensordot(dy, windows, axes=([0, 2, 3], [0, 2, 3]))  # (Cout, Cin, 5, 5)
    if table is not None:
        mask = np.asarray(table, dtype=bool).T[:, :, None, None]
        dw = np.where(mask, dw, np.zeros((), dtype=dt))

    # dx[n, ci, i + p, j + q] += sum_o dy[n, o, i, j] * w[o, ci, p, q]  (one pass per tap)
    dx = np.zeros(x.shape, dtype=dt)
    for p in range(KERNEL):
        for q in range(KERNEL):
            dx[:, :, p : p + oh, q : q + ow] += np.einsum("nohw,oc->nchw", dy, wm[:, :, p, q])

    return dx, np.ascontiguousarray(dw, dtype=dt), np.ascontiguousarray(db, dtype=dt)


# --------------------------------------------------------------------------- subsampling


def subsample_forward(x, coef, bias, *, n_threads=None):
    """LeCun's trainable 2x2 subsampling: ``coef[c] * (2x2 block sum) + bias[c]``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), float32 or float64
    coef : ndarray, shape (C,), float32 or float64
        Per-map trainable coefficient.
    bias : ndarray, shape (C,), float32 or float64
        Per-map trainable bias.
    n_threads : ignored

    Returns
    -------
    y : ndarray, shape (N, C, H // 2, W // 2), dtype ``result_type(x, coef, bias)``
    """
    x, coef, bias = np.asarray(x), np.asarray(coef), np.asarray(bias)
    _check_ndim("x", x, 4)
    c = x.shape[1]
    _check_shape("coef", coef, (c,))
    _check_shape("bias", bias, (c,))
    dt = _float_dtype(x, coef, bias)
    s = _blocks(x.astype(dt, copy=False)).sum(axis=-1)
    y = coef.astype(dt)[None, :, None, None] * s + bias.astype(dt)[None, :, None, None]
    return np.ascontiguousarray(y, dtype=dt)


def subsample_backward(dy, x, coef, *, n_threads=None):
    """Gradients of ``sum(dy * subsample_forward(x, coef, bias))``.

    Parameters
    ----------
    dy : ndarray, shape (N, C, H // 2, W // 2), float32 or float64
    x : ndarray, shape (N, C, H, W), float32 or float64
    coef : ndarray, shape (C,), float32 or float64
    n_threads : ignored

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
        ``coef[c] * dy`` spread over each 2x2 block (0 in an odd last row / column).
    dcoef : ndarray, shape (C,)
        ``sum(dy * block sums)`` per map.
    dbias : ndarray, shape (C,)
        ``sum(dy)`` per map.
        All in dtype ``result_type(dy, x, coef)``.
    """
    dy, x, coef = np.asarray(dy), np.asarray(x), np.asarray(coef)
    _check_ndim("x", x, 4)
    n, c, h, w = x.shape
    _check_shape("coef", coef, (c,))
    _check_shape("dy", dy, (n, c, h // 2, w // 2))
    dt = _float_dtype(dy, x, coef)
    dy = dy.astype(dt, copy=False)
    s = _blocks(x.astype(dt, copy=False)).sum(axis=-1)
    dcoef = (dy * s).sum(axis=(0, 2, 3))
    dbias = dy.sum(axis=(0, 2, 3))
    g = coef.astype(dt)[None, :, None, None] * dy
    dx = _unblocks(np.repeat(g[..., None], 4, axis=-1), h, w)
    return dx, np.ascontiguousarray(dcoef, dtype=dt), np.ascontiguousarray(dbias, dtype=dt)


def maxpool_forward(x, *, n_threads=None):
    """2x2, stride-2 max pooling; a NaN in a block propagates (as ``np.max``).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), float32 or float64
    n_threads : ignored

    Returns
    -------
    y : ndarray, shape (N, C, H // 2, W // 2), dtype of x (float32 or float64)
    """
    x = np.asarray(x)
    _check_ndim("x", x, 4)
    dt = _float_dtype(x)
    return np.ascontiguousarray(_blocks(x.astype(dt, copy=False)).max(axis=-1), dtype=dt)


def maxpool_backward(dy, x, *, n_threads=None):
    """Gradient of ``sum(dy * maxpool_forward(x))`` with respect to x.

    Each block's gradient goes to its first maximum in row-major order
    ((0,0), (0,1), (1,0), (1,1)), i.e. ``np.argmax`` over the 4 block values; with a
    NaN in the block, the first NaN gets it.

    Parameters
    ----------
    dy : ndarray, shape (N, C, H // 2, W // 2), float32 or float64
    x : ndarray, shape (N, C, H, W), float32 or float64
    n_threads : ignored

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), dtype ``result_type(dy, x)``
    """
    dy, x = np.asarray(dy), np.asarray(x)
    _check_ndim("x", x, 4)
    n, c, h, w = x.shape
    _check_shape("dy", dy, (n, c, h // 2, w // 2))
    dt = _float_dtype(dy, x)
    idx = _blocks(x).argmax(axis=-1)  # (N, C, OH, OW)
    onehot = np.arange(4) == idx[..., None]  # (N, C, OH, OW, 4)
    g = np.where(onehot, dy.astype(dt, copy=False)[..., None], np.zeros((), dtype=dt))
    return _unblocks(g, h, w)


# --------------------------------------------------------------------------- dense layers


def linear_forward(x, w, b):
    """Fully connected layer ``y = x @ w.T + b``.

    Parameters
    ----------
    x : ndarray, shape (N, I), float32 or float64
    w : ndarray, shape (O, I), float32 or float64
    b : ndarray, shape (O,), float32 or float64

    Returns
    -------
    y : ndarray, shape (N, O), dtype ``result_type(x, w, b)``
    """
    x, w, b = np.asarray(x), np.asarray(w), np.asarray(b)
    _check_ndim("x", x, 2)
    _check_ndim("w", w, 2)
    _check_shape("w", w, (w.shape[0], x.shape[1]))
    _check_shape("b", b, (w.shape[0],))
    dt = _float_dtype(x, w, b)
    return x.astype(dt, copy=False) @ w.astype(dt, copy=False).T + b.astype(dt)


def linear_backward(dy, x, w):
    """Gradients of ``sum(dy * linear_forward(x, w, b))``.

    Parameters
    ----------
    dy : ndarray, shape (N, O), float32 or float64
    x : ndarray, shape (N, I), float32 or float64
    w : ndarray, shape (O, I), float32 or float64

    Returns
    -------
    dx : ndarray, shape (N, I)
    dw : ndarray, shape (O, I)
    db : ndarray, shape (O,)
        All in dtype ``result_type(dy, x, w)``.
    """
    dy, x, w = np.asarray(dy), np.asarray(x), np.asarray(w)
    _check_ndim("x", x, 2)
    _check_ndim("w", w, 2)
    _check_shape("w", w, (w.shape[0], x.shape[1]))
    _check_shape("dy", dy, (x.shape[0], w.shape[0]))
    dt = _float_dtype(dy, x, w)
    dy, x, w = (a.astype(dt, copy=False) for a in (dy, x, w))
    return dy @ w, dy.T @ x, dy.sum(axis=0)


# --------------------------------------------------------------------------- activations


def relu_forward(x):
    """Rectified linear unit ``max(x, 0)`` (NaN propagates).

    Parameters
    ----------
    x : ndarray, any shape, float32 or float64

    Returns
    -------
    y : ndarray, same shape and dtype as x
    """
    x = np.asarray(x)
    dt = _float_dtype(x)
    return np.maximum(x.astype(dt, copy=False), np.zeros((), dtype=dt))


def relu_backward(dy, x):
    """Gradient of ``sum(dy * relu_forward(x))``: dy where ``x > 0``, else 0.

    Parameters
    ----------
    dy : ndarray, same shape as x, float32 or float64
    x : ndarray, any shape, float32 or float64
        Forward input.

    Returns
    -------
    dx : ndarray, shape of x, dtype ``result_type(dy, x)``
    """
    dy, x = np.asarray(dy), np.asarray(x)
    _check_shape("dy", dy, x.shape)
    dt = _float_dtype(dy, x)
    return np.where(x > 0, dy.astype(dt, copy=False), np.zeros((), dtype=dt))


def scaled_tanh_forward(a):
    """LeCun's squashing function ``f(a) = A tanh(S a)``, A = 1.7159, S = 2/3.

    Parameters
    ----------
    a : ndarray, any shape, float32 or float64

    Returns
    -------
    y : ndarray, same shape and dtype as a
    """
    a = np.asarray(a)
    dt = _float_dtype(a)
    A, S = dt.type(TANH_A), dt.type(TANH_S)
    return A * np.tanh(S * a.astype(dt, copy=False))


def scaled_tanh_backward(dy, y):
    """Gradient of ``sum(dy * scaled_tanh_forward(a))`` from the OUTPUT ``y = f(a)``.

    Uses ``f'(a) = A S (1 - (y / A)^2)``.

    Parameters
    ----------
    dy : ndarray, same shape as y, float32 or float64
    y : ndarray, any shape, float32 or float64
        Forward output.

    Returns
    -------
    da : ndarray, shape of y, dtype ``result_type(dy, y)``
    """
    dy, y = np.asarray(dy), np.asarray(y)
    _check_shape("dy", dy, y.shape)
    dt = _float_dtype(dy, y)
    A, S = dt.type(TANH_A), dt.type(TANH_S)
    t = y.astype(dt, copy=False) / A
    return dy.astype(dt, copy=False) * (A * S) * (1 - t * t)


# --------------------------------------------------------------------------- losses and RBF


def softmax_cross_entropy(logits, labels):
    """Mean softmax cross-entropy and its gradient.

    ``loss = mean_n(-log softmax(logits[n])[labels[n]])``, computed stably (the row
    maximum is subtracted before exponentiating).

    Parameters
    ----------
    logits : ndarray, shape (N, K), float32 or float64
    labels : ndarray, shape (N,), integer in [0, K)

    Returns
    -------
    loss : numpy scalar, dtype of logits
    dlogits : ndarray, shape (N, K), dtype of logits
        Gradient of the MEAN loss: ``(softmax(logits) - onehot(labels)) / N``.
    """
    logits = np.asarray(logits)
    _check_ndim("logits", logits, 2)
    n, k = logits.shape
    labels = _check_labels(labels, n, k)
    dt = _float_dtype(logits)
    z = logits.astype(dt, copy=False)
    z = z - z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))  # (N,)
    rows = np.arange(n)
    loss = (lse - z[rows, labels]).mean() if n else dt.type(0)
    dlogits = np.exp(z - lse[:, None])
    dlogits[rows, labels] -= 1
    dlogits /= max(n, 1)
    return dt.type(loss), dlogits.astype(dt, copy=False)


def rbf_forward(x, centers):
    """Euclidean RBF output units (LeNet-5 F6 -> output, paper eq. 7).

    ``y[n, i] = sum_j (x[n, j] - centers[i, j])^2``.

    Parameters
    ----------
    x : ndarray, shape (N, 84), float32 or float64
    centers : ndarray, shape (10, 84), float32 or float64
        Fixed RBF parameter vectors (any (K, D) with D matching x is accepted).

    Returns
    -------
    y : ndarray, shape (N, 10), dtype ``result_type(x, centers)``
    """
    x, centers = np.asarray(x), np.asarray(centers)
    _check_ndim("x", x, 2)
    _check_ndim("centers", centers, 2)
    _check_shape("centers", centers, (centers.shape[0], x.shape[1]))
    dt = _float_dtype(x, centers)
    d = x.astype(dt, copy=False)[:, None, :] - centers.astype(dt, copy=False)[None, :, :]
    return (d * d).sum(axis=-1)


def rbf_backward(dy, x, centers):
    """Gradient of ``sum(dy * rbf_forward(x, centers))`` with respect to x.

    ``dx[n, j] = 2 sum_i dy[n, i] (x[n, j] - centers[i, j])``; the centers are fixed
    and get no gradient.

    Parameters
    ----------
    dy : ndarray, shape (N, 10), float32 or float64
    x : ndarray, shape (N, 84), float32 or float64
    centers : ndarray, shape (10, 84), float32 or float64

    Returns
    -------
    dx : ndarray, shape (N, 84), dtype ``result_type(dy, x, centers)``
    """
    dy, x, centers = np.asarray(dy), np.asarray(x), np.asarray(centers)
    _check_ndim("x", x, 2)
    _check_ndim("centers", centers, 2)
    _check_shape("centers", centers, (centers.shape[0], x.shape[1]))
    _check_shape("dy", dy, (x.shape[0], centers.shape[0]))
    dt = _float_dtype(dy, x, centers)
    dy, x, centers = (a.astype(dt, copy=False) for a in (dy, x, centers))
    return 2 * (dy.sum(axis=1, keepdims=True) * x - dy @ centers)


def map_loss(y, labels, j):
    """LeCun's MAP criterion (paper eq. 9) on RBF outputs, and its gradient.

    ``loss = mean_n( y[n, labels[n]] + log(exp(-j) + sum_i exp(-y[n, i])) )``

    The log term is a log-sum-exp over ``[-j, -y[n, 0], ..., -y[n, K-1]]`` and is
    computed stably by subtracting its maximum.

    Parameters
    ----------
    y : ndarray, shape (N, K), float32 or float64
        RBF outputs (penalties; smaller is better).
    labels : ndarray, shape (N,), integer in [0, K)
    j : float
        Positive constant of the "rubbish class" term exp(-j).

    Returns
    -------
    loss : numpy scalar, dtype of y
    dy : ndarray, shape (N, K), dtype of y
        Gradient of the MEAN loss:
        ``(onehot(labels) - exp(-y) / (exp(-j) + sum_i exp(-y[n, i]))) / N``.
    """
    y = np.asarray(y)
    _check_ndim("y", y, 2)
    n, k = y.shape
    labels = _check_labels(labels, n, k)
    dt = _float_dtype(y)
    y = y.astype(dt, copy=False)
    neg_j = -dt.type(j)
    # Stable log(exp(-j) + sum_i exp(-y[n, i])).
    m = np.maximum((-y).max(axis=1), neg_j)  # (N,)
    sumexp = np.exp(neg_j - m) + np.exp(-y - m[:, None]).sum(axis=1)
    lse = m + np.log(sumexp)  # (N,)
    rows = np.arange(n)
    loss = (y[rows, labels] + lse).mean() if n else dt.type(0)
    dy = -np.exp(-y - lse[:, None])
    dy[rows, labels] += 1
    dy /= max(n, 1)
    return dt.type(loss), dy.astype(dt, copy=False)


# --------------------------------------------------------------------------- second derivatives
# The diagonal Gauss-Newton back-propagation of stochastic diagonal Levenberg-Marquardt
# (paper, appendix C): the twins of `lenet_fast.sdlm`. Each returns the per-sample
# second derivatives of a layer's inputs and the batch SUM of its parameters'.


def squash_second(d2x, y):
    """``d2E/da^2 = f'(a)^2 d2E/dx^2`` for ``x = f(a) = A tanh(S a)``, from ``y = f(a)``.

    ``f'(a) = A S (1 - (y / A)^2)``; the ``f''`` term is dropped (Gauss-Newton).

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
    d2y, x, w = np.asarray(d2y), np.asarray(x), np.asarray(w)
    n, cin, cout, oh, ow = _conv_shapes(x, w)
    _check_shape("d2y", d2y, (n, cout, oh, ow))
    dt = _float_dtype(d2y, x, w)
    d2y = d2y.astype(dt, copy=False)
    x = x.astype(dt, copy=False)
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

    Returns
    -------
    d2x : (N, C, H, W)
        ``coef[c]^2 d2y`` at each of a unit's 4 inputs.
    hcoef : (C,)
        ``sum s^2 d2y`` per map, s the 2x2 block sum.
    hbias : (C,)
        ``sum d2y`` per map.
    """
    d2y, x, coef = np.asarray(d2y), np.asarray(x), np.asarray(coef)
    _check_ndim("x", x, 4)
    n, c, h, w = x.shape
    _check_shape("coef", coef, (c,))
    _check_shape("d2y", d2y, (n, c, h // 2, w // 2))
    dt = _float_dtype(d2y, x, coef)
    d2y = d2y.astype(dt, copy=False)
    x = x.astype(dt, copy=False)
    s = _blocks(x).sum(axis=-1)
    hcoef = (s * s * d2y).sum(axis=(0, 2, 3))
    hbias = d2y.sum(axis=(0, 2, 3))
    g = coef.astype(dt)[None, :, None, None] ** 2 * d2y
    d2x = np.zeros((n, c, h, w), dtype=dt)
    for du in range(2):
        for dv in range(2):
            d2x[:, :, du:2 * (h // 2):2, dv:2 * (w // 2):2] = g
    return d2x, np.ascontiguousarray(hcoef, dtype=dt), np.ascontiguousarray(hbias, dtype=dt)


def linear_backward_second(d2y, x, w):
    """Second-derivative pass of :func:`linear_forward`.

    Returns
    -------
    d2x : (N, I)
        ``sum_o w[o, i]^2 d2y[n, o]``.
    hw : (O, I)
        ``sum_n x[n, i]^2 d2y[n, o]``.
    hb : (O,)
        ``sum_n d2y[n, o]``.
    """
    d2y, x, w = np.asarray(d2y), np.asarray(x), np.asarray(w)
    _check_ndim("x", x, 2)
    _check_ndim("w", w, 2)
    _check_shape("w", w, (w.shape[0], x.shape[1]))
    _check_shape("d2y", d2y, (x.shape[0], w.shape[0]))
    dt = _float_dtype(d2y, x, w)
    d2y, x, w = (a.astype(dt, copy=False) for a in (d2y, x, w))
    return d2y @ (w * w), d2y.T @ (x * x), d2y.sum(axis=0)


def lecun98_hessian_diagonal(params, x, table):
    """The paper's SDLM curvature estimate for the lecun98 network, averaged over x.

    Forward pass with this module's functions, then the second derivatives from the
    RBF data term (``d2 y_D / dx_j^2 = 2`` at the F6 outputs, see `lenet_fast.sdlm`)
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
