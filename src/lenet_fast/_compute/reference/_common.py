"""The twin's constants and shared helpers (shape checks, 2x2 blocks, masked
weights, labels)."""

import numpy as np

# compiled side's are `lenet_fast.reference.TANH_A` / `TANH_S` (and their C copy in
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




def _conv_grad_args(dy_name, dy, x, w):
    """`dy` and `x` of a convolution's backward pass, checked against `x` and `w` and
    cast to their common floating dtype with `w`; and the sizes (N, Cin, Cout, OH, OW)."""
    dy, x, w = np.asarray(dy), np.asarray(x), np.asarray(w)
    n, cin, cout, oh, ow = sizes = _conv_shapes(x, w)
    _check_shape(dy_name, dy, (n, cout, oh, ow))
    dt = _float_dtype(dy, x, w)
    return dy.astype(dt, copy=False), x.astype(dt, copy=False), sizes


def _subsample_grad_args(dy_name, dy, x, coef):
    """`dy` (N, C, H // 2, W // 2), `x` (N, C, H, W) and `coef` (C,) of a subsampling
    layer's backward pass, checked and cast to their common floating dtype."""
    dy, x, coef = np.asarray(dy), np.asarray(x), np.asarray(coef)
    _check_ndim("x", x, 4)
    n, c, h, w = x.shape
    _check_shape("coef", coef, (c,))
    _check_shape(dy_name, dy, (n, c, h // 2, w // 2))
    dt = _float_dtype(dy, x, coef)
    return dy.astype(dt, copy=False), x.astype(dt, copy=False), coef.astype(dt, copy=False)


def _dense_grad_args(dy_name, dy, x, w_name, w):
    """`dy` (N, O), `x` (N, I) and `w` (O, I) of a dense layer's backward pass (the RBF
    layer's centers included), checked and cast to their common floating dtype."""
    dy, x, w = np.asarray(dy), np.asarray(x), np.asarray(w)
    _check_ndim("x", x, 2)
    _check_ndim(w_name, w, 2)
    _check_shape(w_name, w, (w.shape[0], x.shape[1]))
    _check_shape(dy_name, dy, (x.shape[0], w.shape[0]))
    dt = _float_dtype(dy, x, w)
    return dy.astype(dt, copy=False), x.astype(dt, copy=False), w.astype(dt, copy=False)


def _scores_and_labels(name, scores, labels):
    """`scores` (N, K) cast to its floating dtype, and `labels` (N,) checked against K."""
    scores = np.asarray(scores)
    _check_ndim(name, scores, 2)
    n, k = scores.shape
    labels = _check_labels(labels, n, k)
    return scores.astype(_float_dtype(scores), copy=False), labels
