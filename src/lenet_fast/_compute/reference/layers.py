"""The twin of the layer kernels: 5x5 convolution (dense or with a connection
table), trainable subsampling, 2x2 max pooling and the dense layer, forward and backward."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._common import (
    KERNEL,
    _blocks,
    _check_ndim,
    _check_shape,
    _conv_grad_args,
    _conv_shapes,
    _dense_grad_args,
    _float_dtype,
    _masked_weights,
    _subsample_grad_args,
    _unblocks,
)

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
    dy, x, (n, cin, cout, oh, ow) = _conv_grad_args("dy", dy, x, w)
    dt = dy.dtype
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
    dy, x, coef = _subsample_grad_args("dy", dy, x, coef)
    h, w, dt = x.shape[2], x.shape[3], dy.dtype
    s = _blocks(x).sum(axis=-1)
    dcoef = (dy * s).sum(axis=(0, 2, 3))
    dbias = dy.sum(axis=(0, 2, 3))
    g = coef[None, :, None, None] * dy
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
    dy, x, w = _dense_grad_args("dy", dy, x, "w", w)
    return dy @ w, dy.T @ x, dy.sum(axis=0)


