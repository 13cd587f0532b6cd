"""Property-based tests (hypothesis) of every `lenet_fast.ops` function against its NumPy
twin in `lenet_fast.reference`: random shapes, memory layouts (Fortran order, negative
strides, strided and read-only views), connection tables and thread counts; wrong dtypes
raise TypeError naming the argument. Example counts are kept modest (the suite stays fast).
"""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason='needs hypothesis (pip install "lenet-fast[test]")')
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lenet_fast import ops, reference  # noqa: E402

TOL = 2e-5
EXAMPLES = settings(max_examples=30, deadline=None, derandomize=True)

LAYOUTS = ["C", "F", "negative", "strided", "readonly"]
threads = st.sampled_from([None, 1, 2, 3, 8])
layouts = st.sampled_from(LAYOUTS)
seeds = st.integers(0, 2**32 - 1)


def _relayout(a, layout, axis):
    """The values of `a` (float32) in another memory layout: a view that is not C-contiguous."""
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "negative":
        return np.flip(np.flip(a, axis).copy(), axis)
    if layout == "strided":
        shape = list(a.shape)
        shape[axis] *= 2
        big = np.full(shape, np.nan, np.float32)  # the gaps would poison any wrong read
        index = [slice(None)] * a.ndim
        index[axis] = slice(None, None, 2)
        big[tuple(index)] = a
        return big[tuple(index)]
    if layout == "readonly":
        a = a.copy()
        a.setflags(write=False)
    return a


def _inputs(data, shapes, seed):
    """Random float32 arrays of `shapes`, each in a layout drawn by hypothesis."""
    rng = np.random.default_rng(seed)
    plain = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    views = []
    for a in plain:
        layout = data.draw(layouts)
        axis = data.draw(st.integers(0, a.ndim - 1)) if a.ndim else 0
        views.append(_relayout(a, layout, axis) if a.ndim else a)
        np.testing.assert_array_equal(views[-1], a)
    return plain, views


def _close(name, fast, ref):
    assert fast.dtype == np.float32, f"{name}: dtype {fast.dtype}"
    assert fast.shape == ref.shape, f"{name}: shape {fast.shape} != {ref.shape}"
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    err = float(np.abs(fast.astype(np.float64) - ref).max(initial=0.0))
    assert err <= TOL * scale, f"{name}: max abs error {err:.3g} > {TOL * scale:.3g}"


def _compare(names, fast, ref):
    fast = fast if isinstance(fast, tuple) else (fast,)
    ref = ref if isinstance(ref, tuple) else (ref,)
    assert len(fast) == len(ref)
    for name, f, r in zip(names, fast, ref):
        _close(name, f, np.asarray(r))


def _f64(arrays):
    return [a.astype(np.float64) for a in arrays]


def _against_reference(views, calls):
    """Run each (names, fast, ref) of `calls`, compare, and check that the fast calls left
    their inputs `views` unchanged."""
    copies = [v.copy() for v in views]
    for names, fast, ref in calls:
        _compare(names, fast(), ref())
    for v, c in zip(views, copies):
        np.testing.assert_array_equal(v, c)  # the kernels never write their inputs


# ----------------------------------------------------------------------------- convolution
conv_shapes = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5),
                        st.integers(5, 11), st.integers(5, 11))


@EXAMPLES
@given(data=st.data(), shape=conv_shapes, seed=seeds, nt=threads, sparse=st.booleans())
def test_conv_forward_and_backward(data, shape, seed, nt, sparse):
    n, cin, cout, h, w = shape
    (x, wt, b, dy), views = _inputs(
        data, [(n, cin, h, w), (cout, cin, 5, 5), (cout,), (n, cout, h - 4, w - 4)], seed)
    table = None
    if sparse:
        table = np.random.default_rng(seed + 1).random((cin, cout)) < 0.5
        table = _relayout(table, data.draw(st.sampled_from(["C", "F", "negative"])), 0)
    xv, wv, bv, dyv = views
    _against_reference(views, [
        (["y"], lambda: ops.conv_forward(xv, wv, bv, table, n_threads=nt),
         lambda: reference.conv_forward(*_f64([x, wt, b]), table)),
        (["dx", "dw", "db"], lambda: ops.conv_backward(dyv, xv, wv, table, n_threads=nt),
         lambda: reference.conv_backward(*_f64([dy, x, wt]), table))])


def _weighted_layer(views, arrays, fast, twin, grads, nt):
    """A layer ``forward(x, p, q)`` with ``backward(dy, x, p)`` (subsampling, dense):
    the fast pair against the twin's."""
    x, p, q, dy = arrays
    xv, pv, qv, dyv = views
    _against_reference(views, [
        (["y"], lambda: fast[0](xv, pv, qv, n_threads=nt), lambda: twin[0](*_f64([x, p, q]))),
        (grads, lambda: fast[1](dyv, xv, pv, n_threads=nt), lambda: twin[1](*_f64([dy, x, p])))])


# ----------------------------------------------------------------------------- subsampling
pool_shapes = st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 7),
                        st.integers(1, 7)).map(lambda s: (s[0], s[1], 2 * s[2], 2 * s[3]))


@EXAMPLES
@given(data=st.data(), shape=pool_shapes, seed=seeds, nt=threads)
def test_subsample_forward_and_backward(data, shape, seed, nt):
    n, c, h, w = shape
    arrays, views = _inputs(data, [shape, (c,), (c,), (n, c, h // 2, w // 2)], seed)
    _weighted_layer(views, arrays, (ops.subsample_forward, ops.subsample_backward),
                    (reference.subsample_forward, reference.subsample_backward),
                    ["dx", "dcoef", "dbias"], nt)


@EXAMPLES
@given(data=st.data(), shape=pool_shapes, seed=seeds, nt=threads, ties=st.booleans())
def test_maxpool_forward_and_backward(data, shape, seed, nt, ties):
    n, c, h, w = shape
    (x, dy), views = _inputs(data, [shape, (n, c, h // 2, w // 2)], seed)
    if ties:  # coarse values: many blocks with two equal maxima (first one wins)
        x = np.round(x).astype(np.float32)
        views[0] = _relayout(x, data.draw(layouts), data.draw(st.integers(0, 3)))
    xv, dyv = views
    _against_reference(views, [
        (["y"], lambda: ops.maxpool_forward(xv, n_threads=nt),
         lambda: reference.maxpool_forward(x)),
        (["dx"], lambda: ops.maxpool_backward(dyv, xv, n_threads=nt),
         lambda: reference.maxpool_backward(dy.astype(np.float64), x))])


# ----------------------------------------------------------------------------- linear
linear_shapes = st.tuples(st.integers(1, 6), st.integers(1, 40), st.integers(1, 24))


@EXAMPLES
@given(data=st.data(), shape=linear_shapes, seed=seeds, nt=threads)
def test_linear_forward_and_backward(data, shape, seed, nt):
    n, i, o = shape
    arrays, views = _inputs(data, [(n, i), (o, i), (o,), (n, o)], seed)
    _weighted_layer(views, arrays, (ops.linear_forward, ops.linear_backward),
                    (reference.linear_forward, reference.linear_backward), ["dx", "dw", "db"], nt)


# ----------------------------------------------------------------------------- bad input
CALLS = {
    "conv_forward": (ops.conv_forward, ["x", "w", "b"], [(2, 3, 8, 8), (4, 3, 5, 5), (4,)]),
    "conv_backward": (ops.conv_backward, ["dy", "x", "w"], [(2, 4, 4, 4), (2, 3, 8, 8), (4, 3, 5, 5)]),
    "subsample_forward": (ops.subsample_forward, ["x", "coef", "bias"], [(2, 3, 4, 4), (3,), (3,)]),
    "subsample_backward": (ops.subsample_backward, ["dy", "x", "coef"], [(2, 3, 2, 2), (2, 3, 4, 4), (3,)]),
    "maxpool_forward": (ops.maxpool_forward, ["x"], [(2, 3, 4, 4)]),
    "maxpool_backward": (ops.maxpool_backward, ["dy", "x"], [(2, 3, 2, 2), (2, 3, 4, 4)]),
    "linear_forward": (ops.linear_forward, ["x", "w", "b"], [(2, 5), (3, 5), (3,)]),
    "linear_backward": (ops.linear_backward, ["dy", "x", "w"], [(2, 3), (2, 5), (3, 5)]),
}
WRONG_DTYPES = [np.float64, np.float16, np.int32, np.uint8, np.complex64, np.bool_]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(name=st.sampled_from(sorted(CALLS)), which=st.integers(0, 2),
       dtype=st.sampled_from(WRONG_DTYPES), nt=threads)
def test_wrong_dtype_raises_type_error_naming_the_argument(name, which, dtype, nt):
    func, names, shapes = CALLS[name]
    which %= len(names)
    args = [np.ones(s, np.float32) for s in shapes]
    args[which] = args[which].astype(dtype)
    with pytest.raises(TypeError, match=rf"\b{names[which]} must be float32"):
        func(*args, n_threads=nt)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(name=st.sampled_from(sorted(CALLS)),
       nt=st.one_of(st.integers(max_value=0), st.integers(min_value=ops.MAX_THREADS + 1)))
def test_out_of_range_thread_counts_raise_value_error(name, nt):
    func, _, shapes = CALLS[name]
    with pytest.raises(ValueError, match="n_threads"):
        func(*[np.ones(s, np.float32) for s in shapes], n_threads=nt)
