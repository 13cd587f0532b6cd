"""The twin of the activations (ReLU, LeCun's scaled tanh), the losses (softmax
cross-entropy, the MAP loss) and the RBF output layer, forward and backward."""

import numpy as np

from ._common import (
    TANH_A,
    TANH_S,
    _check_ndim,
    _check_shape,
    _dense_grad_args,
    _float_dtype,
    _scores_and_labels,
)

# --------------------------------------------------------------------------- activations


def relu_forward(x):
    """Rectified linear unit ``max(x, 0)`` (NaN propagates).

    Parameters
    ----------
    x : ndarray, any shape, float32 or float64
        The pre-activations.

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
    a : ndarray
        The weighted sums, any shape, float32 or float64.

    Returns
    -------
    y : ndarray
        ``f(a)``, in the shape and dtype of `a`.
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
    dy : ndarray
        The gradient with respect to the output, float32 or float64, shaped as `y`.
    y : ndarray
        The forward output ``f(a)``, any shape, float32 or float64.

    Returns
    -------
    da : ndarray
        In the shape of `y` and dtype ``result_type(dy, y)``.
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
    z, labels = _scores_and_labels("logits", logits, labels)
    n, dt = z.shape[0], z.dtype
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
    dy, x, centers = _dense_grad_args("dy", dy, x, "centers", centers)
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
    y, labels = _scores_and_labels("y", y, labels)
    n, dt = y.shape[0], y.dtype
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


