"""The fast kernels (`lenet_fast.ops`) against their NumPy twin (`lenet_fast.reference`).

Tolerances (float32 kernels against the float64 reference on the same float32
inputs): forward values rtol 1e-5 / atol 1e-5 relative to the output's scale;
gradients likewise, scaled by the largest magnitude, because sums of hundreds of
float32 products carry ~1e-6 relative rounding.
"""

import os

import numpy as np
import pytest

import lenet_fast
from lenet_fast import LECUN_C3_TABLE, ops, reference

FWD_TOL = 2e-5
GRAD_TOL = 2e-5


def _rng(seed):
    return np.random.default_rng(seed)


def _close(name, fast, ref, tol):
    assert fast.dtype == np.float32, f"{name}: dtype {fast.dtype}"
    assert fast.shape == ref.shape, f"{name}: shape {fast.shape} != {ref.shape}"
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    err = float(np.abs(fast.astype(np.float64) - ref).max(initial=0.0))
    assert err <= tol * scale, f"{name}: max abs error {err:.3g} > {tol * scale:.3g}"


def _ref64(*arrays):
    return [a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype == np.float32 else a
            for a in arrays]


def _random_table(rng, cin, cout):
    t = rng.random((cin, cout)) < 0.5
    t[0, 0], t[-1, -1] = True, False if cin * cout > 1 else True
    return t


CONV_CASES = [
    # name, N, Cin, Cout, H, W, table
    ("C1", 3, 1, 6, 32, 32, None),
    ("C3-lecun", 3, 6, 16, 14, 14, "lecun"),
    ("C3-dense", 2, 6, 16, 14, 14, None),
    ("C5", 4, 16, 120, 5, 5, None),
    ("batch1", 1, 6, 16, 14, 14, "lecun"),
    ("odd-batch", 5, 3, 4, 9, 9, None),
    ("H!=W", 2, 2, 3, 7, 12, None),
    ("cin1-cout1", 3, 1, 1, 6, 5, None),
    ("all-true", 2, 6, 16, 14, 14, "ones"),
    ("random-table", 3, 5, 7, 11, 8, "random"),
]


def _table(kind, rng, cin, cout):
    return {None: None, "lecun": LECUN_C3_TABLE, "ones": np.ones((cin, cout), bool),
            "random": _random_table(rng, cin, cout) if kind == "random" else None}[kind]


def _conv_inputs(seed, n, cin, cout, h, w):
    rng = _rng(seed)
    x = rng.standard_normal((n, cin, h, w)).astype(np.float32)
    wt = (rng.standard_normal((cout, cin, 5, 5)) * 0.2).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    dy = rng.standard_normal((n, cout, h - 4, w - 4)).astype(np.float32)
    return rng, x, wt, b, dy


@pytest.mark.parametrize("name,n,cin,cout,h,w,kind", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_conv_matches_reference(name, n, cin, cout, h, w, kind):
    rng, x, wt, b, dy = _conv_inputs(hash(name) % 1000, n, cin, cout, h, w)
    table = _table(kind, rng, cin, cout)
    y = ops.conv_forward(x, wt, b, table)
    _close(f"{name} y", y, reference.conv_forward(*_ref64(x, wt, b), table), FWD_TOL)
    dx, dw, db = ops.conv_backward(dy, x, wt, table)
    rdx, rdw, rdb = reference.conv_backward(*_ref64(dy, x, wt), table)
    _close(f"{name} dx", dx, rdx, GRAD_TOL)
    _close(f"{name} dw", dw, rdw, GRAD_TOL)
    _close(f"{name} db", db, rdb, GRAD_TOL)
    if table is not None:
        assert np.all(dw[~table.T] == 0), "dw must be exactly 0 where the table is False"


def test_all_true_table_equals_dense():
    rng, x, wt, b, dy = _conv_inputs(7, 3, 6, 16, 14, 14)
    ones = np.ones((6, 16), bool)
    assert np.array_equal(ops.conv_forward(x, wt, b, ones), ops.conv_forward(x, wt, b))
    for a, c in zip(ops.conv_backward(dy, x, wt, ones), ops.conv_backward(dy, x, wt)):
        assert np.array_equal(a, c)


def test_table_ignores_unconnected_weights():
    rng, x, wt, b, dy = _conv_inputs(8, 2, 6, 16, 14, 14)
    zeroed = wt * LECUN_C3_TABLE.T[:, :, None, None]
    y_table = ops.conv_forward(x, wt, b, LECUN_C3_TABLE)
    y_dense = ops.conv_forward(x, zeroed.astype(np.float32), b)
    np.testing.assert_allclose(y_table, y_dense, rtol=1e-5, atol=1e-5)


POOL_SHAPES = [(3, 6, 28, 28), (1, 16, 10, 10), (5, 3, 6, 8), (2, 1, 2, 2)]


@pytest.mark.parametrize("shape", POOL_SHAPES, ids=str)
def test_subsample_matches_reference(shape):
    rng = _rng(sum(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    coef = rng.standard_normal(shape[1]).astype(np.float32)
    bias = rng.standard_normal(shape[1]).astype(np.float32)
    dy = rng.standard_normal((shape[0], shape[1], shape[2] // 2, shape[3] // 2)).astype(np.float32)
    _close("y", ops.subsample_forward(x, coef, bias), reference.subsample_forward(*_ref64(x, coef, bias)),
           FWD_TOL)
    for label, a, r in zip(("dx", "dcoef", "dbias"), ops.subsample_backward(dy, x, coef),
                           reference.subsample_backward(*_ref64(dy, x, coef))):
        _close(label, a, r, GRAD_TOL)


@pytest.mark.parametrize("shape", POOL_SHAPES, ids=str)
def test_maxpool_matches_reference(shape):
    rng = _rng(sum(shape) + 1)
    # Rounded values make ties common, so first-maximum routing is exercised.
    x = np.round(rng.standard_normal(shape) * 2).astype(np.float32)
    dy = rng.standard_normal((shape[0], shape[1], shape[2] // 2, shape[3] // 2)).astype(np.float32)
    assert np.array_equal(ops.maxpool_forward(x), reference.maxpool_forward(x))
    assert np.array_equal(ops.maxpool_backward(dy, x), reference.maxpool_backward(dy, x))


def test_maxpool_nan_and_inf_propagate_like_numpy():
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 0, 1] = np.nan
    x[0, 0, 1, 0] = 5.0
    x[0, 0, 2, 2] = -np.inf
    x[0, 0, 3, 3] = np.inf
    dy = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2)
    y = ops.maxpool_forward(x)
    assert np.array_equal(y, reference.maxpool_forward(x), equal_nan=True)
    assert np.isnan(y[0, 0, 0, 0]) and y[0, 0, 1, 1] == np.inf
    assert np.array_equal(ops.maxpool_backward(dy, x), reference.maxpool_backward(dy, x))


@pytest.mark.parametrize("width", [8, 10, 12, 14, 18, 28, 30])
def test_maxpool_short_rows_and_row_tails(width):
    """Rows of 4-7 outputs (S4: 10 -> 5) and the last vector step of longer rows
    (C1: 28 -> 14) overlap earlier work; NaN, infinities and ties there too."""
    rng = _rng(width)
    x = np.round(rng.standard_normal((3, 2, 6, width)) * 2).astype(np.float32)
    x[0, 0, 1, width - 1] = np.nan
    x[1, 1, 4, width - 3] = np.inf
    x[2, 0, 0, width - 2] = -np.inf
    x[2, 1, 3, 1] = np.nan
    dy = rng.standard_normal((3, 2, 3, width // 2)).astype(np.float32)
    assert np.array_equal(ops.maxpool_forward(x), reference.maxpool_forward(x), equal_nan=True)
    assert np.array_equal(ops.maxpool_backward(dy, x), reference.maxpool_backward(dy, x))


def test_maxpool_nan_on_vector_path():
    rng = _rng(31)
    x = rng.standard_normal((2, 3, 6, 40)).astype(np.float32)
    x[0, 1, 2, 5] = np.nan
    x[1, 2, 5, 33] = np.nan
    x[1, 0, 0, 7] = np.inf
    x[0, 0, 3, 20] = -np.inf
    dy = rng.standard_normal((2, 3, 3, 20)).astype(np.float32)
    assert np.array_equal(ops.maxpool_forward(x), reference.maxpool_forward(x), equal_nan=True)
    assert np.array_equal(ops.maxpool_backward(dy, x), reference.maxpool_backward(dy, x))


def test_conv_nan_propagates():
    rng, x, wt, b, dy = _conv_inputs(3, 2, 2, 3, 8, 8)
    x[1, 0, 4, 4] = np.nan
    y = ops.conv_forward(x, wt, b)
    assert not np.isnan(y[0]).any()
    assert np.isnan(y[1, :, 0:5, 0:5]).all()


@pytest.mark.parametrize("n,o,i", [(1, 84, 120), (7, 10, 84), (3, 1, 1)])
def test_linear_matches_reference(n, o, i):
    rng = _rng(n * o + i)
    x = rng.standard_normal((n, i)).astype(np.float32)
    w = rng.standard_normal((o, i)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32)
    dy = rng.standard_normal((n, o)).astype(np.float32)
    _close("y", ops.linear_forward(x, w, b), reference.linear_forward(*_ref64(x, w, b)), FWD_TOL)
    for label, a, r in zip(("dx", "dw", "db"), ops.linear_backward(dy, x, w),
                           reference.linear_backward(*_ref64(dy, x, w))):
        _close(label, a, r, GRAD_TOL)


# ---------------------------------------------------------------- thread invariance
def _all_outputs(n_threads):
    rng, x, wt, b, dy = _conv_inputs(11, 13, 6, 16, 14, 14)
    out = [ops.conv_forward(x, wt, b, LECUN_C3_TABLE, n_threads=n_threads)]
    out += ops.conv_backward(dy, x, wt, LECUN_C3_TABLE, n_threads=n_threads)
    rng, x1, w1, b1, dy1 = _conv_inputs(12, 9, 1, 6, 32, 32)
    out += [ops.conv_forward(x1, w1, b1, n_threads=n_threads)]
    out += ops.conv_backward(dy1, x1, w1, n_threads=n_threads)
    rng, x5, w5, b5, dy5 = _conv_inputs(13, 9, 16, 120, 5, 5)
    out += [ops.conv_forward(x5, w5, b5, n_threads=n_threads)]
    out += ops.conv_backward(dy5, x5, w5, n_threads=n_threads)
    xp = _rng(14).standard_normal((13, 6, 28, 28)).astype(np.float32)
    dyp = _rng(15).standard_normal((13, 6, 14, 14)).astype(np.float32)
    coef = _rng(16).standard_normal(6).astype(np.float32)
    out += [ops.subsample_forward(xp, coef, coef, n_threads=n_threads)]
    out += ops.subsample_backward(dyp, xp, coef, n_threads=n_threads)
    out += [ops.maxpool_forward(xp, n_threads=n_threads), ops.maxpool_backward(dyp, xp, n_threads=n_threads)]
    xl = _rng(17).standard_normal((13, 120)).astype(np.float32)
    wl = _rng(18).standard_normal((84, 120)).astype(np.float32)
    dyl = _rng(19).standard_normal((13, 84)).astype(np.float32)
    out += [ops.linear_forward(xl, wl, wl[:, 0].copy(), n_threads=n_threads)]
    out += ops.linear_backward(dyl, xl, wl, n_threads=n_threads)
    return out


def test_results_do_not_depend_on_thread_count():
    base = _all_outputs(1)
    for nt in (2, 4):
        for i, (a, b) in enumerate(zip(base, _all_outputs(nt))):
            assert np.array_equal(a, b), f"output {i} differs between 1 and {nt} threads"


def test_threadpoolctl_limit_gives_same_results():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    free = _all_outputs(None)
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        limited = _all_outputs(None)
    for a, b in zip(free, limited):
        assert np.array_equal(a, b)


def test_concurrent_python_threads_are_correct():
    from concurrent.futures import ThreadPoolExecutor

    rng, x, wt, b, dy = _conv_inputs(21, 16, 6, 16, 14, 14)
    expected = ops.conv_backward(dy, x, wt, LECUN_C3_TABLE)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: ops.conv_backward(dy, x, wt, LECUN_C3_TABLE), range(16)))
    for got in results:
        for a, e in zip(got, expected):
            assert np.array_equal(a, e)


def test_built_with_openmp_reports_the_build():
    info = lenet_fast.build_info()
    assert lenet_fast.built_with_openmp() is info["openmp"]
    assert ("-fopenmp" in info["compile_flags"]) == info["openmp"]
    # CI states what it built: LENET_FAST_EXPECT_OPENMP=1 for the gcc build, 0 for serial.
    expected = os.environ.get("LENET_FAST_EXPECT_OPENMP")
    if expected is not None:
        assert lenet_fast.built_with_openmp() is (expected == "1")


# ---------------------------------------------------------------- bad input
def _good():
    rng, x, wt, b, dy = _conv_inputs(0, 2, 6, 16, 14, 14)
    return x, wt, b, dy


BAD_CONV = [
    ("float64 x", lambda x, w, b, dy: dict(x=x.astype(np.float64)), TypeError, "x"),
    ("list x", lambda x, w, b, dy: dict(x=x.tolist()), TypeError, "x"),
    ("3-d x", lambda x, w, b, dy: dict(x=x[0]), ValueError, "x"),
    ("Cin mismatch", lambda x, w, b, dy: dict(w=w[:, :5].copy()), ValueError, "w"),
    ("3x3 kernel", lambda x, w, b, dy: dict(w=w[:, :, :3, :3].copy()), ValueError, "w"),
    ("b length", lambda x, w, b, dy: dict(b=b[:3].copy()), ValueError, "b"),
    ("x too small", lambda x, w, b, dy: dict(x=x[:, :, :4, :].copy()), ValueError, "x"),
    ("table shape", lambda x, w, b, dy: dict(table=np.ones((16, 6), bool)), ValueError, "table"),
    ("table dtype", lambda x, w, b, dy: dict(table=np.ones((6, 16), np.int64)), TypeError, "table"),
    ("n_threads 0", lambda x, w, b, dy: dict(n_threads=0), ValueError, "n_threads"),
    ("n_threads -3", lambda x, w, b, dy: dict(n_threads=-3), ValueError, "n_threads"),
    ("n_threads float", lambda x, w, b, dy: dict(n_threads=2.0), TypeError, "n_threads"),
]


@pytest.mark.parametrize("name,change,exc,word", BAD_CONV, ids=[c[0] for c in BAD_CONV])
def test_conv_rejects_bad_input(name, change, exc, word):
    x, w, b, dy = _good()
    args = dict(x=x, w=w, b=b, table=None, n_threads=None)
    args.update(change(x, w, b, dy))
    with pytest.raises(exc, match=word):
        ops.conv_forward(args["x"], args["w"], args["b"], args["table"], n_threads=args["n_threads"])
    if "b" in change(x, w, b, dy):
        return  # conv_backward takes no bias
    with pytest.raises(exc, match=word):
        ops.conv_backward(dy, args["x"], args["w"], args["table"], n_threads=args["n_threads"])


def test_conv_backward_rejects_bad_dy():
    x, w, b, dy = _good()
    with pytest.raises(ValueError, match="dy"):
        ops.conv_backward(dy[:, :, :9], x, w)
    with pytest.raises(TypeError, match="dy"):
        ops.conv_backward(dy.astype(np.float16), x, w)


def test_pool_rejects_bad_input():
    x = np.zeros((2, 3, 6, 6), np.float32)
    c = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="even"):
        ops.maxpool_forward(np.zeros((2, 3, 5, 6), np.float32))
    with pytest.raises(ValueError, match="even"):
        ops.subsample_forward(np.zeros((2, 3, 6, 7), np.float32), c, c)
    with pytest.raises(ValueError, match="coef"):
        ops.subsample_forward(x, c[:2].copy(), c)
    with pytest.raises(ValueError, match="bias"):
        ops.subsample_forward(x, c, np.ones(4, np.float32))
    with pytest.raises(TypeError, match="coef"):
        ops.subsample_backward(np.zeros((2, 3, 3, 3), np.float32), x, c.astype(np.float64))
    with pytest.raises(ValueError, match="dy"):
        ops.maxpool_backward(np.zeros((2, 3, 3, 2), np.float32), x)
    with pytest.raises(ValueError, match="dy"):
        ops.subsample_backward(np.zeros((2, 3, 2, 3), np.float32), x, c)
    with pytest.raises(ValueError, match="n_threads"):
        ops.maxpool_forward(x, n_threads=0)


def test_non_contiguous_and_negative_stride_views_are_handled():
    rng, x, wt, b, dy = _conv_inputs(5, 2, 6, 16, 28, 28)
    strided = x[:, :, ::2, ::2]          # (2, 6, 14, 14), non-contiguous
    flipped = x[:, :, ::-1, :][:, :, :14, :14]
    for view in (strided, flipped):
        assert not view.flags.c_contiguous
        expected = ops.conv_forward(np.ascontiguousarray(view), wt, b, LECUN_C3_TABLE)
        assert np.array_equal(ops.conv_forward(view, wt, b, LECUN_C3_TABLE), expected)
        assert np.array_equal(ops.maxpool_forward(view), ops.maxpool_forward(np.ascontiguousarray(view)))
    assert x.flags.c_contiguous  # the caller's array is untouched


def test_empty_batch():
    w = np.zeros((16, 6, 5, 5), np.float32)
    y = ops.conv_forward(np.zeros((0, 6, 14, 14), np.float32), w, np.zeros(16, np.float32))
    assert y.shape == (0, 16, 10, 10)
    dx, dw, db = ops.conv_backward(np.zeros((0, 16, 10, 10), np.float32),
                                   np.zeros((0, 6, 14, 14), np.float32), w)
    assert dx.shape == (0, 6, 14, 14) and not dw.any() and not db.any()


def test_default_threads_follow_the_cpus_this_process_may_use(monkeypatch, tmp_path):
    """Without OMP_NUM_THREADS the default is the affinity bounded by a cgroup quota."""
    from lenet_fast._compute import ops as O  # its module: the test patches what it reads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(O.os, "sched_getaffinity", lambda pid: {0})
    assert O.usable_cpus() == 1 and O.resolve_threads(None) == 1
    monkeypatch.setattr(O.os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(O, "_cgroup_cpu_quota", lambda: 1.5)
    assert O.usable_cpus() == 1
    monkeypatch.setattr(O, "_cgroup_cpu_quota", lambda: None)
    assert O.usable_cpus() == 8
    assert O._parse_cpu_max("max 100000\n", "") is None
    assert O._parse_cpu_max("250000 100000\n", "") == 2.5
    monkeypatch.setenv("OMP_NUM_THREADS", "3")       # an explicit setting wins
    monkeypatch.setattr(O._omp, "max_threads", lambda: 3)
    assert O.resolve_threads(None) == 3
