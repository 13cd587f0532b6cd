"""Tests of the plain NumPy reference layers (lenet_fast.reference).

The gradient checks use central differences in float64 on ~20 sampled entries of every
input / parameter, for the scalar objective L = sum(dy * forward(...)) (or the loss
itself for the two losses), and also require the sampled analytic gradient to be
non-zero somewhere, so that an all-zero backward cannot pass.
"""

import ast
from pathlib import Path

import numpy as np
import pytest

from lenet_fast import reference as ref

H_STEP = 1e-6
RTOL = 1e-6
N_SAMPLES = 20


# --------------------------------------------------------------------------- helpers


def check_layer_grads(forward, dy, args, grads, rng, n_samples=None):
    """Each of `grads` (in the order of `args`) against central differences of
    ``sum(dy * forward(**args))``."""
    def objective(**a):
        return np.sum(dy * forward(**a))

    for name, grad in zip(args, grads):
        check_grad(objective, args, name, grad, rng, **({"n_samples": n_samples} if n_samples else {}))


def check_grad(objective, args, name, analytic, rng, n_samples=N_SAMPLES):
    """Central-difference check of d objective(**args) / d args[name] at sampled entries."""
    base = args[name]
    assert analytic.shape == base.shape
    flat_idx = rng.choice(base.size, size=min(n_samples, base.size), replace=False)
    got, want = [], []
    for k in flat_idx:
        idx = np.unravel_index(k, base.shape)
        plus = base.copy()
        plus[idx] += H_STEP
        minus = base.copy()
        minus[idx] -= H_STEP
        lp = float(objective(**{**args, name: plus}))
        lm = float(objective(**{**args, name: minus}))
        numeric = (lp - lm) / (2 * H_STEP)
        a = float(analytic[idx])
        rel = abs(a - numeric) / max(abs(a), abs(numeric), 1e-8)
        assert rel < RTOL, f"d/d{name}{idx}: analytic {a!r} vs numeric {numeric!r} (rel {rel:.2e})"
        got.append(a)
        want.append(numeric)
    assert np.any(np.asarray(got) != 0), f"sampled analytic gradients of {name} are all zero"
    return np.asarray(got), np.asarray(want)


def random_table(rng, cin, cout):
    while True:
        table = rng.random((cin, cout)) < 0.5
        if table.any() and not table.all():
            return table


def brute_force_conv(x, w, b, table=None):
    """Loop-by-loop valid cross-correlation, independent of the vectorized code."""
    n_, cin, h, wd = x.shape
    cout, _, kh, kw = w.shape
    y = np.zeros((n_, cout, h - kh + 1, wd - kw + 1))
    for n in range(n_):
        for o in range(cout):
            for i in range(h - kh + 1):
                for j in range(wd - kw + 1):
                    acc = b[o]
                    for c in range(cin):
                        if table is not None and not table[c, o]:
                            continue
                        for p in range(kh):
                            for q in range(kw):
                                acc += x[n, c, i + p, j + q] * w[o, c, p, q]
                    y[n, o, i, j] = acc
    return y


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# --------------------------------------------------------------------------- module hygiene


def test_reference_imports_only_numpy():
    """Each module of the twin imports numpy and its own siblings, nothing else."""
    from lenet_fast._compute import reference as twin

    folder = Path(twin.__file__).parent
    sources = sorted(folder.glob("*.py"))
    assert len(sources) >= 4
    modules = set()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    assert node.level == 1 and (folder / f"{node.module}.py").is_file(), (
                        f"{source.name}: relative imports outside the twin would pull in "
                        "lenet_fast code")
                else:
                    modules.add(node.module)
    assert modules, "expected at least the numpy import"
    assert all(m == "numpy" or m.startswith("numpy.") for m in modules), modules


def test_tanh_constants_agree_everywhere():
    """A and S of f(a) = A tanh(S a): `lenet_fast.tables`' (the Python side's home), the
    twin's own copy and the C copy in csrc/_net.pxi are the same numbers."""
    import re
    from pathlib import Path

    from lenet_fast._compute import tables

    assert (tables.TANH_A, tables.TANH_S) == (ref.TANH_A, ref.TANH_S) == (1.7159, 2.0 / 3.0)
    net = Path(__file__).resolve().parents[1] / "csrc" / "_net.pxi"
    if not net.is_file():
        pytest.skip("csrc/_net.pxi is not in this checkout")
    text = net.read_text()
    c_a = re.search(r"cdef float TANH_A = ([0-9.]+)\n", text).group(1)
    c_s = re.search(r"cdef float TANH_S = ([0-9.]+) / ([0-9.]+)\n", text).groups()
    assert float(c_a) == tables.TANH_A
    assert float(c_s[0]) / float(c_s[1]) == tables.TANH_S


def test_module_constants_and_docstring():
    assert ref.TANH_A == 1.7159
    assert ref.TANH_S == pytest.approx(2.0 / 3.0)
    doc = ref.__doc__
    assert "LeCun" in doc and "1998" in doc
    assert "Gradient-Based Learning Applied to" in doc and "Document Recognition" in doc


# --------------------------------------------------------------------------- convolution


@pytest.mark.parametrize("use_table", [False, True], ids=["dense", "table"])
def test_conv_gradients(rng, use_table):
    x = rng.standard_normal((3, 2, 9, 8))
    w = rng.standard_normal((4, 2, 5, 5))
    b = rng.standard_normal(4)
    table = random_table(rng, 2, 4) if use_table else None
    dy = rng.standard_normal((3, 4, 5, 4))

    def objective(x, w, b):
        return np.sum(dy * ref.conv_forward(x, w, b, table))

    dx, dw, db = ref.conv_backward(dy, x, w, table)
    args = dict(x=x, w=w, b=b)
    check_grad(objective, args, "x", dx, rng)
    check_grad(objective, args, "w", dw, rng, n_samples=40)
    check_grad(objective, args, "b", db, rng)


def test_conv_forward_matches_brute_force(rng):
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((2, 3, 5, 5))
    b = rng.standard_normal(2)
    np.testing.assert_allclose(ref.conv_forward(x, w, b), brute_force_conv(x, w, b), rtol=1e-12, atol=1e-12)
    table = np.array([[True, False], [False, True], [True, True]])
    np.testing.assert_allclose(
        ref.conv_forward(x, w, b, table), brute_force_conv(x, w, b, table), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("p, q", [(0, 0), (0, 4), (4, 0), (2, 3)])
def test_conv_no_flip_orientation(rng, p, q):
    # A one-hot kernel at tap (p, q) picks x[i + p, j + q] (cross-correlation, no flip).
    x = rng.standard_normal((1, 1, 8, 9))
    w = np.zeros((1, 1, 5, 5))
    w[0, 0, p, q] = 1.0
    y = ref.conv_forward(x, w, np.zeros(1))
    np.testing.assert_array_equal(y[0, 0], x[0, 0, p : p + 4, q : q + 5])


def test_conv_table_semantics(rng):
    x = rng.standard_normal((2, 3, 8, 8))
    w = rng.standard_normal((4, 3, 5, 5))
    b = rng.standard_normal(4)
    dy = rng.standard_normal((2, 4, 4, 4))
    table = random_table(rng, 3, 4)

    # An all-True table is the dense convolution.
    full = np.ones((3, 4), dtype=bool)
    np.testing.assert_array_equal(ref.conv_forward(x, w, b, full), ref.conv_forward(x, w, b))
    for g_full, g_dense in zip(ref.conv_backward(dy, x, w, full), ref.conv_backward(dy, x, w)):
        np.testing.assert_array_equal(g_full, g_dense)

    # A table conv is a dense conv with the unconnected kernels zeroed.
    w_zeroed = w * table.T[:, :, None, None]
    np.testing.assert_allclose(
        ref.conv_forward(x, w, b, table), ref.conv_forward(x, w_zeroed, b), rtol=1e-12, atol=1e-12
    )
    dx_t, dw_t, db_t = ref.conv_backward(dy, x, w, table)
    dx_z, dw_z, db_z = ref.conv_backward(dy, x, w_zeroed)
    np.testing.assert_allclose(dx_t, dx_z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db_t, db_z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw_t[table.T], dw_z[table.T], rtol=1e-12, atol=1e-12)

    # dw is exactly zero where the table is False, and not all zero elsewhere.
    assert np.all(dw_t[~table.T] == 0)
    assert np.all(np.abs(dw_t[table.T]).sum(axis=(1, 2)) > 0)

    # Unconnected weights are ignored entirely (whatever their values).
    w_garbage = np.where(table.T[:, :, None, None], w, 1e6)
    np.testing.assert_array_equal(ref.conv_forward(x, w_garbage, b, table), ref.conv_forward(x, w, b, table))
    np.testing.assert_array_equal(ref.conv_backward(dy, x, w_garbage, table)[0], dx_t)


def test_conv_shapes_and_errors(rng):
    x = rng.standard_normal((2, 3, 12, 10))
    w = rng.standard_normal((5, 3, 5, 5))
    assert ref.conv_forward(x, w, np.zeros(5), n_threads=4).shape == (2, 5, 8, 6)
    with pytest.raises(ValueError):
        ref.conv_forward(x[0], w, np.zeros(5))
    with pytest.raises(ValueError):
        ref.conv_forward(x, w[:, :2], np.zeros(5))
    with pytest.raises(ValueError):
        ref.conv_forward(x, w, np.zeros(5), np.ones((5, 3), dtype=bool))


# --------------------------------------------------------------------------- subsampling


def test_subsample_gradients(rng):
    x = rng.standard_normal((2, 3, 6, 8))
    coef = rng.standard_normal(3)
    bias = rng.standard_normal(3)
    dy = rng.standard_normal((2, 3, 3, 4))

    check_layer_grads(ref.subsample_forward, dy, dict(x=x, coef=coef, bias=bias),
                      ref.subsample_backward(dy, x, coef), rng)


def test_subsample_hand_computed():
    x = np.stack([np.arange(16.0).reshape(4, 4), np.ones((4, 4))])[None]  # (1, 2, 4, 4)
    coef = np.array([2.0, -0.5])
    bias = np.array([1.0, 3.0])
    # Channel 0 block sums: [[0+1+4+5, 2+3+6+7], [8+9+12+13, 10+11+14+15]] = [[10, 18], [42, 50]].
    expected = np.array([[[[21.0, 37.0], [85.0, 101.0]], [[1.0, 1.0], [1.0, 1.0]]]])
    np.testing.assert_array_equal(ref.subsample_forward(x, coef, bias), expected)

    dy = np.array([[[[1.0, 2.0], [3.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]]]])
    dx, dcoef, dbias = ref.subsample_backward(dy, x, coef)
    np.testing.assert_array_equal(dcoef, [10 + 36 + 126 + 200, 16.0])
    np.testing.assert_array_equal(dbias, [10.0, 4.0])
    spread = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    np.testing.assert_array_equal(dx[0, 0], 2.0 * spread)
    np.testing.assert_array_equal(dx[0, 1], np.full((4, 4), -0.5))


# --------------------------------------------------------------------------- max pooling


def test_maxpool_gradients(rng):
    # Distinct values 0.01 apart: the argmax cannot change under a 1e-6 perturbation.
    x = (rng.permutation(2 * 3 * 6 * 8) * 0.01).reshape(2, 3, 6, 8)
    dy = rng.standard_normal((2, 3, 3, 4))

    def objective(x):
        return np.sum(dy * ref.maxpool_forward(x))

    dx = ref.maxpool_backward(dy, x)
    check_grad(objective, dict(x=x), "x", dx, rng, n_samples=40)
    # Exactly one entry per block receives the block's gradient.
    assert np.count_nonzero(dx) == dy.size
    np.testing.assert_allclose(ref.subsample_forward(dx, np.ones(3), np.zeros(3)), dy)


def test_maxpool_values_and_first_maximum_tie_break():
    x = np.array(
        [
            [1.0, 3.0, 2.0, 2.0, 0.0, 0.0, -1.0, -2.0],
            [3.0, 3.0, 2.0, 2.0, 0.0, 5.0, -1.0, -1.0],
        ]
    )[None, None]  # (1, 1, 2, 8): four blocks
    y = ref.maxpool_forward(x)
    np.testing.assert_array_equal(y, [[[[3.0, 2.0, 5.0, -1.0]]]])
    dy = np.array([[[[10.0, 20.0, 30.0, 40.0]]]])
    dx = ref.maxpool_backward(dy, x)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1] = 10.0  # [[1, 3], [3, 3]]: first 3 in row-major order is (0, 1)
    expected[0, 0, 0, 2] = 20.0  # all equal: (0, 0)
    expected[0, 0, 1, 5] = 30.0  # unique max at (1, 1)
    expected[0, 0, 0, 6] = 40.0  # [[-1, -2], [-1, -1]]: (0, 0)
    np.testing.assert_array_equal(dx, expected)


def test_maxpool_nan():
    nan = np.nan
    x = np.array(
        [
            [1.0, nan, 7.0, 1.0, nan, 2.0],
            [nan, 2.0, 1.0, 2.0, 3.0, nan],
        ]
    )[None, None]
    y = ref.maxpool_forward(x)
    assert np.isnan(y[0, 0, 0, 0]) and y[0, 0, 0, 1] == 7.0 and np.isnan(y[0, 0, 0, 2])
    dx = ref.maxpool_backward(np.array([[[[1.0, 2.0, 3.0]]]]), x)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1] = 1.0  # first NaN in row-major order
    expected[0, 0, 0, 2] = 2.0
    expected[0, 0, 0, 4] = 3.0
    np.testing.assert_array_equal(dx, expected)


def test_pooling_odd_size_drops_last_row_and_column(rng):
    x = rng.standard_normal((1, 2, 5, 7))
    y = ref.maxpool_forward(x)
    assert y.shape == (1, 2, 2, 3)
    np.testing.assert_array_equal(y, ref.maxpool_forward(x[:, :, :4, :6]))
    dx = ref.maxpool_backward(np.ones(y.shape), x)
    assert dx.shape == x.shape and np.all(dx[:, :, 4, :] == 0) and np.all(dx[:, :, :, 6] == 0)
    s = ref.subsample_forward(x, np.ones(2), np.zeros(2))
    np.testing.assert_array_equal(s, ref.subsample_forward(x[:, :, :4, :6], np.ones(2), np.zeros(2)))


# --------------------------------------------------------------------------- dense layers, activations


def test_linear_gradients_and_values(rng):
    x = rng.standard_normal((4, 7))
    w = rng.standard_normal((5, 7))
    b = rng.standard_normal(5)
    dy = rng.standard_normal((4, 5))
    np.testing.assert_allclose(ref.linear_forward(x, w, b), x @ w.T + b, rtol=1e-14)

    check_layer_grads(ref.linear_forward, dy, dict(x=x, w=w, b=b), ref.linear_backward(dy, x, w),
                      rng)


def test_relu(rng):
    x = rng.standard_normal((3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # stay away from the kink
    dy = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(ref.relu_forward(x), np.where(x > 0, x, 0.0))

    dx = ref.relu_backward(dy, x)
    check_grad(lambda x: np.sum(dy * ref.relu_forward(x)), dict(x=x), "x", dx, rng, n_samples=40)
    # Gradient is 0 where x <= 0, including exactly at 0.
    z = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(ref.relu_backward(np.ones(3), z), [0.0, 0.0, 1.0])


def test_scaled_tanh(rng):
    a = rng.standard_normal((3, 10)) * 1.5
    dy = rng.standard_normal(a.shape)
    y = ref.scaled_tanh_forward(a)
    np.testing.assert_allclose(y, 1.7159 * np.tanh(2.0 / 3.0 * a), rtol=1e-14)
    # LeCun's choice: f(1) ~ 1 and f(-1) ~ -1.
    assert abs(ref.scaled_tanh_forward(np.array([1.0]))[0] - 1.0) < 1e-4

    da = ref.scaled_tanh_backward(dy, y)  # from the OUTPUT
    check_grad(lambda a: np.sum(dy * ref.scaled_tanh_forward(a)), dict(a=a), "a", da, rng)
    np.testing.assert_allclose(
        ref.scaled_tanh_backward(np.ones(1), np.zeros(1)), [1.7159 * 2 / 3], rtol=1e-14
    )


def test_rbf(rng):
    x = rng.standard_normal((3, 84))
    centers = rng.choice([-1.0, 1.0], size=(10, 84))
    dy = rng.standard_normal((3, 10))
    y = ref.rbf_forward(x, centers)
    assert y.shape == (3, 10)
    expected = np.array([[np.sum((x[n] - centers[i]) ** 2) for i in range(10)] for n in range(3)])
    np.testing.assert_allclose(y, expected, rtol=1e-13)

    dx = ref.rbf_backward(dy, x, centers)
    check_grad(lambda x: np.sum(dy * ref.rbf_forward(x, centers)), dict(x=x), "x", dx, rng)


# --------------------------------------------------------------------------- losses


def test_softmax_cross_entropy(rng):
    logits = rng.standard_normal((5, 10))
    labels = rng.integers(0, 10, size=5)
    loss, dlogits = ref.softmax_cross_entropy(logits, labels)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loss, -np.mean(np.log(p[np.arange(5), labels])), rtol=1e-13)
    np.testing.assert_allclose(dlogits.sum(axis=1), 0.0, atol=1e-15)

    def objective(logits):
        return ref.softmax_cross_entropy(logits, labels)[0]

    check_grad(objective, dict(logits=logits), "logits", dlogits, rng)

    # Stable for huge logits (no overflow, shift invariant).
    big_loss, big_grad = ref.softmax_cross_entropy(logits + 1000.0, labels)
    np.testing.assert_allclose(big_loss, loss, rtol=1e-10)
    np.testing.assert_allclose(big_grad, dlogits, atol=1e-12)
    huge = np.array([[1000.0, -1000.0], [0.0, 800.0]])
    h_loss, h_grad = ref.softmax_cross_entropy(huge, np.array([1, 1]))
    assert np.isfinite(h_loss) and np.all(np.isfinite(h_grad))
    np.testing.assert_allclose(h_loss, 1000.0, rtol=1e-12)  # (2000 + 0) / 2


def test_map_loss(rng):
    y = rng.uniform(0.2, 3.0, size=(4, 10))
    labels = rng.integers(0, 10, size=4)
    j = 1.5
    loss, dy = ref.map_loss(y, labels, j)
    direct = np.mean(y[np.arange(4), labels] + np.log(np.exp(-j) + np.exp(-y).sum(axis=1)))
    np.testing.assert_allclose(loss, direct, rtol=1e-13)

    check_grad(lambda y: ref.map_loss(y, labels, j)[0], dict(y=y), "y", dy, rng)

    # Stable at extreme values (the naive formula overflows / underflows there).
    for scale in (-1000.0, 1000.0):
        l_big, g_big = ref.map_loss(y + scale, labels, j)
        assert np.isfinite(l_big) and np.all(np.isfinite(g_big))
    # All y huge: log term -> -j, loss -> mean(y[label]) - j.
    yy = np.full((2, 10), 1e4)
    l_h, _ = ref.map_loss(yy, np.array([0, 3]), j)
    np.testing.assert_allclose(l_h, 1e4 - j, rtol=1e-14)
    # All y very negative: loss -> y[label] - min(y) = 0 for equal entries plus log(10).
    l_n, _ = ref.map_loss(-yy, np.array([0, 3]), j)
    np.testing.assert_allclose(l_n, np.log(10.0), rtol=1e-12)


# --------------------------------------------------------------------------- dtypes and new arrays


def _all_calls(rng, dt_main, dt_other=None):
    """(name, callable, inputs) for every public function, inputs in the given dtypes."""
    dt_other = dt_other or dt_main

    def r(*shape, dt=dt_main):
        return rng.standard_normal(shape).astype(dt)

    x4, w4, b4 = r(2, 3, 9, 8), r(4, 3, 5, 5, dt=dt_other), r(4, dt=dt_other)
    table = np.array([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 1]], dtype=bool)
    dy4 = r(2, 4, 5, 4, dt=dt_other)
    xs, cs, bs, dys = r(2, 3, 6, 8), r(3, dt=dt_other), r(3, dt=dt_other), r(2, 3, 3, 4, dt=dt_other)
    x2, w2, b2, dy2 = r(3, 7), r(5, 7, dt=dt_other), r(5, dt=dt_other), r(3, 5, dt=dt_other)
    xr, cr, dyr = r(3, 84), r(10, 84, dt=dt_other), r(3, 10, dt=dt_other)
    logits, labels = r(3, 10), np.array([1, 0, 9])
    return [
        ("conv_forward", lambda: ref.conv_forward(x4, w4, b4, table), (x4, w4, b4)),
        ("conv_forward_dense", lambda: ref.conv_forward(x4, w4, b4), (x4, w4, b4)),
        ("conv_backward", lambda: ref.conv_backward(dy4, x4, w4, table), (dy4, x4, w4)),
        ("subsample_forward", lambda: ref.subsample_forward(xs, cs, bs), (xs, cs, bs)),
        ("subsample_backward", lambda: ref.subsample_backward(dys, xs, cs), (dys, xs, cs)),
        ("maxpool_forward", lambda: ref.maxpool_forward(xs), (xs,)),
        ("maxpool_backward", lambda: ref.maxpool_backward(dys, xs), (dys, xs)),
        ("linear_forward", lambda: ref.linear_forward(x2, w2, b2), (x2, w2, b2)),
        ("linear_backward", lambda: ref.linear_backward(dy2, x2, w2), (dy2, x2, w2)),
        ("relu_forward", lambda: ref.relu_forward(x2), (x2,)),
        ("relu_backward", lambda: ref.relu_backward(r(3, 7, dt=dt_other), x2), (x2,)),
        ("scaled_tanh_forward", lambda: ref.scaled_tanh_forward(x2), (x2,)),
        ("scaled_tanh_backward", lambda: ref.scaled_tanh_backward(r(3, 7, dt=dt_other), x2), (x2,)),
        ("rbf_forward", lambda: ref.rbf_forward(xr, cr), (xr, cr)),
        ("rbf_backward", lambda: ref.rbf_backward(dyr, xr, cr), (dyr, xr, cr)),
        ("softmax_cross_entropy", lambda: ref.softmax_cross_entropy(logits, labels), (logits,)),
        ("map_loss", lambda: ref.map_loss(np.abs(logits), labels, 1.0), (logits,)),
    ]


def _outputs(result):
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_dtype_preserved(rng, dt):
    for name, call, _ in _all_calls(rng, dt):
        for out in _outputs(call()):
            assert out.dtype == dt, f"{name}: {out.dtype} != {np.dtype(dt)}"


def test_mixed_dtypes_promote_to_float64(rng):
    for name, call, _ in _all_calls(rng, np.float32, np.float64):
        single_input = ("maxpool_forward", "relu_forward", "scaled_tanh_forward")
        if name in single_input + ("softmax_cross_entropy", "map_loss"):
            continue  # only one floating input
        for out in _outputs(call()):
            assert out.dtype == np.float64, f"{name}: {out.dtype}"


def test_float32_close_to_float64(rng):
    x = rng.standard_normal((2, 3, 9, 8))
    w = rng.standard_normal((4, 3, 5, 5))
    b = rng.standard_normal(4)
    y32 = ref.conv_forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32))
    np.testing.assert_allclose(y32, ref.conv_forward(x, w, b), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_outputs_are_new_arrays(rng, dt):
    for name, call, inputs in _all_calls(rng, dt):
        for out in _outputs(call()):
            if isinstance(out, np.ndarray):
                for a in inputs:
                    assert not np.shares_memory(out, a), name
