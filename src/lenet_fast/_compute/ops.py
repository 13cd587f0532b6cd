"""The fast kernels, checked: 5x5 convolution (dense or with a connection table),
LeCun's trainable subsampling and 2x2 max pooling, forward and backward.

Every function validates its arguments (TypeError / ValueError naming the argument,
raised before any compiled code runs), copies non-contiguous views, allocates its
outputs and calls a Cython/OpenMP kernel that runs without the GIL. Arrays are NCHW
float32. `lenet_fast.reference` has the same functions in plain NumPy.

`n_threads=None` uses the OpenMP default (``OMP_NUM_THREADS``, threadpoolctl);
results are bitwise identical whatever the thread count.
"""

import operator
import os

import numpy as np

from .. import _omp
from .._isa import kernels as _kernels
from ._checks import float32_array as _f32

#: The most threads any entry point accepts (``n_threads``, ``--threads``); the OpenMP
#: default (``OMP_NUM_THREADS``) is capped to it. OpenMP runtimes crash or fail when
#: asked for tens of thousands of threads; no machine this library targets has 1024 cores.
MAX_THREADS = 1024

__all__ = [
    "MAX_THREADS", "conv_forward", "conv_backward", "subsample_forward", "subsample_backward",
    "maxpool_forward", "maxpool_backward", "linear_forward", "linear_backward",
    "resolve_threads", "usable_cpus", "connections",
]


def usable_cpus():
    """CPUs this process may run on: its CPU affinity, bounded by a cgroup CPU quota.

    A container limited to 1.5 CPUs on a 16-core machine gets 1, a process pinned to
    cores 2-3 gets 2. Threads beyond these only wait for each other.

    Returns
    -------
    int
        At least 1.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        n = min(n, max(1, int(quota)))
    return max(1, n)


def _cgroup_cpu_quota():
    """CPUs the process's cgroup may use (cgroup v2 cpu.max, v1 cfs quota), or None."""
    for path, parse in (("/sys/fs/cgroup/cpu.max", _parse_cpu_max),
                        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", _parse_cfs)):
        try:
            with open(path, encoding="ascii") as f:
                value = parse(f.read(), path)
        except (OSError, ValueError):
            continue
        if value is not None:
            return value
    return None


def _parse_cpu_max(text, path):
    fields = text.split()
    if not fields or fields[0] == "max":
        return None
    return int(fields[0]) / (int(fields[1]) if len(fields) > 1 else 100000)


def _parse_cfs(text, path):
    quota = int(text.strip())
    if quota <= 0:
        return None
    with open(path.replace("cfs_quota_us", "cfs_period_us"), encoding="ascii") as f:
        return quota / int(f.read().strip())


def resolve_threads(n_threads=None):
    """Return the thread count to use: n_threads, or the default when None.

    The default is ``OMP_NUM_THREADS`` (or threadpoolctl's limit) when set, else the
    CPUs this process may use (`usable_cpus`: affinity and cgroup quota, not the
    machine's core count); capped to `MAX_THREADS`.

    Parameters
    ----------
    n_threads : int or None
        The count asked for; None for the default.

    Returns
    -------
    int
        The thread count, 1 to `MAX_THREADS`.

    Raises
    ------
    TypeError
        For a non-integer (a bool included).
    ValueError
        For ``n_threads < 1`` or ``n_threads > MAX_THREADS``.
    """
    if n_threads is None:
        n = max(1, _omp.max_threads())
        if "OMP_NUM_THREADS" not in os.environ:
            n = min(n, usable_cpus())
        return min(n, MAX_THREADS)
    if isinstance(n_threads, bool):
        raise TypeError("n_threads must be an int or None, not bool")
    try:
        n = operator.index(n_threads)
    except TypeError:
        raise TypeError(f"n_threads must be an int or None, not {type(n_threads).__name__}") from None
    if n < 1:
        raise ValueError(f"n_threads must be >= 1, got {n}")
    if n > MAX_THREADS:
        raise ValueError(f"n_threads must be <= {MAX_THREADS} (lenet_fast.ops.MAX_THREADS), got {n}")
    return n


def _check_shape(name, a, expected):
    if a.shape != tuple(expected):
        raise ValueError(f"{name} has shape {a.shape}, expected {tuple(expected)}")


class Connections:
    """Index lists of a connection table, in the forms the convolution kernels read.

    Attributes (int32 arrays)
    -------------------------
    cptr, cidx : for output map o, the input maps cidx[cptr[o]:cptr[o+1]]
    pco : the output map of each connected pair (cidx holds its input map)
    fptr, fidx, fflag : for output maps (2p, 2p+1), the union of their input maps
        fidx[fptr[p]:fptr[p+1]], flagged 0 (read by both), 1 (first only), 2 (second)
    bptr, bidx, bflag : the same for input maps (2p, 2p+1) and the output maps
        reading them (the input gradient's view of the table)
    """

    def __init__(self, table):
        self.table = table
        by_out = table.T
        self.cptr = np.concatenate([[0], np.cumsum(by_out.sum(axis=1))]).astype(np.int32)
        self.pco, self.cidx = (a.astype(np.int32) for a in np.nonzero(by_out))
        self.fptr, self.fidx, self.fflag = _pair_lists(by_out)
        self.bptr, self.bidx, self.bflag = _pair_lists(table)

    @property
    def forward_args(self):
        """The arguments `_conv.forward` takes after b."""
        return self.cptr, self.cidx, self.fptr, self.fidx, self.fflag

    @property
    def backward_args(self):
        """The arguments `_conv.backward` takes after w."""
        return self.cidx, self.pco, self.bptr, self.bidx, self.bflag


def _pair_lists(rows):
    """Merged column lists of row pairs (2p, 2p+1) of a bool matrix, with flags."""
    ptr, idx, flag = [0], [], []
    for p in range(0, rows.shape[0], 2):
        first = rows[p]
        second = rows[p + 1] if p + 1 < rows.shape[0] else np.zeros_like(first)
        for j in np.nonzero(first | second)[0]:
            idx.append(j)
            flag.append(0 if first[j] and second[j] else (1 if first[j] else 2))
        ptr.append(len(idx))
    return (np.array(ptr, np.int32), np.array(idx, np.int32), np.array(flag, np.int32))


def connections(table, c_in, c_out):
    """Check a connection table and return its `Connections` index lists.

    Parameters
    ----------
    table : bool ndarray (c_in, c_out) or None
        table[i, o] True when output map o reads input map i; None means dense.
    c_in, c_out : int
        The numbers of input and output maps.

    Returns
    -------
    Connections
        The table as index lists, in the form the compiled kernels take.

    Raises
    ------
    TypeError
        If `table` is neither a bool ndarray nor None.
    ValueError
        If its shape is not (c_in, c_out).
    """
    if table is None:
        table = np.ones((c_in, c_out), dtype=bool)
    elif not isinstance(table, np.ndarray) or table.dtype != np.bool_:
        kind = table.dtype if isinstance(table, np.ndarray) else type(table).__name__
        raise TypeError(f"table must be a bool ndarray of shape (Cin, Cout) or None, got {kind}")
    elif table.shape != (c_in, c_out):
        raise ValueError(f"table has shape {table.shape}, expected (Cin, Cout) = {(c_in, c_out)}")
    return Connections(np.ascontiguousarray(table))


def _conv_args(x, w, table):
    x = _f32("x", x, 4)
    w = _f32("w", w, 4)
    n, c_in, h, wd = x.shape
    if h < 5 or wd < 5:
        raise ValueError(f"x must be at least 5x5 for a 5x5 convolution, got {h}x{wd}")
    if w.shape[1:] != (c_in, 5, 5) or w.shape[0] < 1:
        raise ValueError(f"w has shape {w.shape}, expected (Cout, {c_in}, 5, 5) for x of shape {x.shape}")
    return x, w, connections(table, c_in, w.shape[0])


def conv_forward(x, w, b, table=None, *, n_threads=None):
    """5x5 valid convolution (cross-correlation), stride 1.

    Parameters
    ----------
    x : float32 (N, Cin, H, W), H, W >= 5
    w : float32 (Cout, Cin, 5, 5)
    b : float32 (Cout,)
    table : bool (Cin, Cout) or None
        Connection table (e.g. ``LECUN_C3_TABLE``); unconnected pairs are skipped.
        None is the dense convolution.
    n_threads : int or None, optional
        OpenMP threads, 1 to `MAX_THREADS`; None: the default of `resolve_threads`.
        Results do not depend on it.

    Returns
    -------
    y : float32 (N, Cout, H-4, W-4)
    """
    nt = resolve_threads(n_threads)
    x, w, conn = _conv_args(x, w, table)
    b = _f32("b", b, 1)
    _check_shape("b", b, (w.shape[0],))
    n, _, h, wd = x.shape
    y = np.empty((n, w.shape[0], h - 4, wd - 4), dtype=np.float32)
    if n:
        _kernels.conv_forward(y, x, w, b, *conn.forward_args, nt)
    return y


def conv_backward(dy, x, w, table=None, *, n_threads=None):
    """Gradients of the 5x5 convolution.

    Parameters
    ----------
    dy : float32 (N, Cout, H-4, W-4)
        Gradient of the loss with respect to the output.
    x, w, table : as in `conv_forward`.
    n_threads : int or None, as in `conv_forward`

    Returns
    -------
    dx : float32 (N, Cin, H, W)
    dw : float32 (Cout, Cin, 5, 5), exactly 0 where the table is False
    db : float32 (Cout,)
    """
    nt = resolve_threads(n_threads)
    x, w, conn = _conv_args(x, w, table)
    dy = _f32("dy", dy, 4)
    n, _, h, wd = x.shape
    _check_shape("dy", dy, (n, w.shape[0], h - 4, wd - 4))
    dx = np.empty_like(x)
    dw = np.zeros_like(w)
    db = np.zeros(w.shape[0], dtype=np.float32)
    if n:
        scratch = np.empty(_kernels.conv_scratch_size(n, w.shape[0], h, wd), dtype=np.float32)
        _kernels.conv_backward(dx, dw, db, dy, x, w, *conn.backward_args, scratch, nt)
    return dx, dw, db


def _pool_input(x):
    x = _f32("x", x, 4)
    h, wd = x.shape[2:]
    if h % 2 or wd % 2 or h < 2 or wd < 2:
        raise ValueError(f"x must have even H and W >= 2 for 2x2 subsampling, got {h}x{wd}")
    return x


def _pooled_shape(x):
    n, c, h, wd = x.shape
    return (n, c, h // 2, wd // 2)


def subsample_forward(x, coef, bias, *, n_threads=None):
    """LeCun's trainable subsampling: coef[c] * (sum of each 2x2 block) + bias[c].

    Parameters
    ----------
    x : float32 (N, C, H, W), H and W even
    coef, bias : float32 (C,)
        The trainable coefficient and bias of each map.
    n_threads : int or None, as in `conv_forward`

    Returns
    -------
    y : float32 (N, C, H/2, W/2)
    """
    nt = resolve_threads(n_threads)
    x = _pool_input(x)
    coef = _f32("coef", coef, 1)
    bias = _f32("bias", bias, 1)
    _check_shape("coef", coef, (x.shape[1],))
    _check_shape("bias", bias, (x.shape[1],))
    y = np.empty(_pooled_shape(x), dtype=np.float32)
    if x.shape[0]:
        _kernels.subsample_forward(y, x, coef, bias, nt)
    return y


def subsample_backward(dy, x, coef, *, n_threads=None):
    """Gradients of `subsample_forward`.

    Parameters
    ----------
    dy : float32 (N, C, H/2, W/2)
        Gradient of the loss with respect to the output.
    x, coef : as in `subsample_forward`.
    n_threads : int or None, as in `conv_forward`

    Returns
    -------
    dx : float32 (N, C, H, W)
    dcoef, dbias : float32 (C,)
    """
    nt = resolve_threads(n_threads)
    x = _pool_input(x)
    coef = _f32("coef", coef, 1)
    _check_shape("coef", coef, (x.shape[1],))
    dy = _f32("dy", dy, 4)
    _check_shape("dy", dy, _pooled_shape(x))
    dx = np.empty_like(x)
    dcoef = np.zeros(x.shape[1], dtype=np.float32)
    dbias = np.zeros(x.shape[1], dtype=np.float32)
    if x.shape[0]:
        _kernels.subsample_backward(dx, dcoef, dbias, dy, x, coef, nt)
    return dx, dcoef, dbias


def maxpool_forward(x, *, n_threads=None):
    """2x2, stride-2 max pooling; NaN propagates as in np.max.

    Parameters
    ----------
    x : float32 (N, C, H, W), H and W even
        The maps to pool.
    n_threads : int or None, as in `conv_forward`

    Returns
    -------
    y : float32 (N, C, H/2, W/2)
        The largest value of each 2x2 block.
    """
    nt = resolve_threads(n_threads)
    x = _pool_input(x)
    y = np.empty(_pooled_shape(x), dtype=np.float32)
    if x.shape[0]:
        _kernels.maxpool_forward(y, x, nt)
    return y


def maxpool_backward(dy, x, *, n_threads=None):
    """Gradient of `maxpool_forward`: each block's gradient goes to its first maximum
    in row-major order (as np.argmax over the block).

    Parameters
    ----------
    dy : float32 (N, C, H/2, W/2)
        Gradient of the loss with respect to the output.
    x : float32 (N, C, H, W)
        The forward input.
    n_threads : int or None, as in `conv_forward`

    Returns
    -------
    dx : float32 (N, C, H, W)
    """
    nt = resolve_threads(n_threads)
    x = _pool_input(x)
    dy = _f32("dy", dy, 4)
    _check_shape("dy", dy, _pooled_shape(x))
    dx = np.empty_like(x)
    if x.shape[0]:
        _kernels.maxpool_backward(dx, dy, x, nt)
    return dx


def _linear_args(x, w):
    x = _f32("x", x, 2)
    w = _f32("w", w, 2)
    if w.shape[1] != x.shape[1] or w.shape[0] < 1:
        raise ValueError(f"w has shape {w.shape}, expected (O, {x.shape[1]}) for x of shape {x.shape}")
    return x, w


def linear_forward(x, w, b, *, n_threads=None):
    """Fully connected layer: y = x @ w.T + b.

    Parameters
    ----------
    x : float32 (N, I)
    w : float32 (O, I)
    b : float32 (O,)
    n_threads : int or None, as in `conv_forward`

    Returns
    -------
    y : float32 (N, O)
    """
    nt = resolve_threads(n_threads)
    x, w = _linear_args(x, w)
    b = _f32("b", b, 1)
    _check_shape("b", b, (w.shape[0],))
    y = np.empty((x.shape[0], w.shape[0]), dtype=np.float32)
    if x.shape[0] and x.shape[1]:
        _kernels.linear_forward(y, x, w, b, nt)
    elif x.shape[0]:
        y[:] = b
    return y


def linear_backward(dy, x, w, *, n_threads=None):
    """Gradients of `linear_forward`.

    Parameters
    ----------
    dy : float32 (N, O)
        Gradient of the loss with respect to the output.
    x, w : as in `linear_forward`.
    n_threads : int or None, as in `conv_forward`

    Returns
    -------
    dx : float32 (N, I)
    dw : float32 (O, I)
    db : float32 (O,)
    """
    nt = resolve_threads(n_threads)
    x, w = _linear_args(x, w)
    dy = _f32("dy", dy, 2)
    _check_shape("dy", dy, (x.shape[0], w.shape[0]))
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    db = np.zeros(w.shape[0], dtype=np.float32)
    if x.shape[0] and x.shape[1]:
        _kernels.linear_backward(dx, dw, db, dy, x, w, nt)
    elif x.shape[0]:
        db[:] = dy.sum(axis=0)
    return dx, dw, db
