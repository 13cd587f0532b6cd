"""Tests for lenet_fast.LeNet5.

The central test rebuilds the whole network, forward and backward, from the plain NumPy
layers of `lenet_fast.reference` in float64 and checks the fast float32 model's loss,
outputs and every parameter gradient against it, then three SGD steps.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import lenet_fast
from lenet_fast._compute import codes
from lenet_fast import reference as R
from lenet_fast.datasets import preprocess
from lenet_fast import LeNet5
from lenet_fast.model import MAP_J
from lenet_fast.optim import SGD, Adam
from lenet_fast._compute.tables import LECUN_C3_TABLE

CONFIGS = [("modern", "lecun"), ("modern", "full"), ("lecun98", "lecun")]
CONFIG_IDS = ["modern-c3lecun", "modern-c3full", "lecun98"]

# Tolerances of the float32 model against the float64 reference. The model computes in
# float32 (eps 1.2e-7) and sums at most a few thousand terms per value, so its errors
# are ~1e-6 relative; measured: loss <= 2e-7 relative, gradients <= 3e-7 of the largest
# reference gradient. The thresholds leave ~300x headroom while still catching any
# wrong index, missing term or misrouted max (those give errors of order 1e-2 .. 1).
LOSS_RTOL = 1e-5
OUTPUT_TOL = 1e-4  # max |out - ref| <= OUTPUT_TOL * max(1, max |ref|)
GRAD_TOL = 1e-4  # max |g - ref| <= GRAD_TOL * max(1, max |ref g|), per parameter
STEP_TOL = 1e-4  # params after the SGD steps: rtol = atol = STEP_TOL

PARAM_SHAPES = {
    "c1.weight": (6, 1, 5, 5), "c1.bias": (6,),
    "s2.coef": (6,), "s2.bias": (6,),
    "c3.weight": (16, 6, 5, 5), "c3.bias": (16,),
    "s4.coef": (16,), "s4.bias": (16,),
    "c5.weight": (120, 16, 5, 5), "c5.bias": (120,),
    "f6.weight": (84, 120), "f6.bias": (84,),
    "out.weight": (10, 84), "out.bias": (10,),
}
MODERN_NAMES = ["c1.weight", "c1.bias", "c3.weight", "c3.bias", "c5.weight", "c5.bias",
                "f6.weight", "f6.bias", "out.weight", "out.bias"]
LECUN98_NAMES = ["c1.weight", "c1.bias", "s2.coef", "s2.bias", "c3.weight", "c3.bias",
                 "s4.coef", "s4.bias", "c5.weight", "c5.bias", "f6.weight", "f6.bias"]


# ----------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def digits(request):
    """(uint8 images (64, 28, 28), int64 labels (64,)): real MNIST digits, or seeded
    random ones when the data is absent (the model tests do not need real digits)."""
    try:
        images, labels = request.getfixturevalue("mnist_train")
    except pytest.skip.Exception:
        rng = np.random.default_rng(1234)
        images = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
        images[:, :, :4] = 0  # some flat background, as in real digits (exact max ties)
        return images, rng.integers(0, 10, 64).astype(np.int64)
    # A fixed, class-balanced pick of training digits.
    idx = np.concatenate([np.flatnonzero(labels == d)[:7] for d in range(10)])
    idx = np.random.default_rng(0).permutation(idx)[:64]
    return np.ascontiguousarray(images[idx]), labels[idx].astype(np.int64)


@pytest.fixture(scope="module")
def batch(digits):
    """Preprocessed float32 (64, 1, 32, 32) inputs and their labels."""
    images, labels = digits
    return preprocess(images), labels


# ----------------------------------------------------------------------------- reference
def reference_loss_and_grads(params, x, labels, variant, table, centers=None):
    """The whole network in float64 from `lenet_fast.reference` layers only.

    Mirrors the layer order of ``LeNet5._forward`` / ``_backward``.

    Returns
    -------
    loss : float
    out : (N, 10) logits (modern) or RBF distances (lecun98)
    grads : dict keyed like ``params``
    """
    p = params
    n = x.shape[0]
    g = {}
    if variant == "modern":
        a1 = R.conv_forward(x, p["c1.weight"], p["c1.bias"])
        h1 = R.relu_forward(a1)
        p1 = R.maxpool_forward(h1)
        a3 = R.conv_forward(p1, p["c3.weight"], p["c3.bias"], table)
        h3 = R.relu_forward(a3)
        p3 = R.maxpool_forward(h3)
        a5 = R.conv_forward(p3, p["c5.weight"], p["c5.bias"]).reshape(n, 120)
        h5 = R.relu_forward(a5)
        a6 = R.linear_forward(h5, p["f6.weight"], p["f6.bias"])
        h6 = R.relu_forward(a6)
        out = R.linear_forward(h6, p["out.weight"], p["out.bias"])
        loss, g_out = R.softmax_cross_entropy(out, labels)

        g_h6, g["out.weight"], g["out.bias"] = R.linear_backward(g_out, h6, p["out.weight"])
        g_a6 = R.relu_backward(g_h6, a6)
        g_h5, g["f6.weight"], g["f6.bias"] = R.linear_backward(g_a6, h5, p["f6.weight"])
        g_a5 = R.relu_backward(g_h5, a5).reshape(n, 120, 1, 1)
        g_p3, g["c5.weight"], g["c5.bias"] = R.conv_backward(g_a5, p3, p["c5.weight"])
        g_a3 = R.relu_backward(R.maxpool_backward(g_p3, h3), a3)
        g_p1, g["c3.weight"], g["c3.bias"] = R.conv_backward(g_a3, p1, p["c3.weight"], table)
        g_a1 = R.relu_backward(R.maxpool_backward(g_p1, h1), a1)
        _, g["c1.weight"], g["c1.bias"] = R.conv_backward(g_a1, x, p["c1.weight"])
    elif variant == "lecun98":
        f = R.scaled_tanh_forward
        a1 = R.conv_forward(x, p["c1.weight"], p["c1.bias"])
        h1 = f(a1)
        q1 = f(R.subsample_forward(h1, p["s2.coef"], p["s2.bias"]))
        a3 = R.conv_forward(q1, p["c3.weight"], p["c3.bias"], table)
        h3 = f(a3)
        q3 = f(R.subsample_forward(h3, p["s4.coef"], p["s4.bias"]))
        h5 = f(R.conv_forward(q3, p["c5.weight"], p["c5.bias"]).reshape(n, 120))
        h6 = f(R.linear_forward(h5, p["f6.weight"], p["f6.bias"]))
        out = R.rbf_forward(h6, centers)
        loss, g_out = R.map_loss(out, labels, MAP_J)

        df = R.scaled_tanh_backward  # from the squashing function's output
        g_a6 = df(R.rbf_backward(g_out, h6, centers), h6)
        g_h5, g["f6.weight"], g["f6.bias"] = R.linear_backward(g_a6, h5, p["f6.weight"])
        g_a5 = df(g_h5, h5).reshape(n, 120, 1, 1)
        g_q3, g["c5.weight"], g["c5.bias"] = R.conv_backward(g_a5, q3, p["c5.weight"])
        g_h3, g["s4.coef"], g["s4.bias"] = R.subsample_backward(df(g_q3, q3), h3, p["s4.coef"])
        g_q1, g["c3.weight"], g["c3.bias"] = R.conv_backward(df(g_h3, h3), q1, p["c3.weight"],
                                                             table)
        g_h1, g["s2.coef"], g["s2.bias"] = R.subsample_backward(df(g_q1, q1), h1, p["s2.coef"])
        _, g["c1.weight"], g["c1.bias"] = R.conv_backward(df(g_h1, h1), x, p["c1.weight"])
    else:
        raise ValueError(variant)
    return float(loss), out, g


def _ref_args(model):
    params64 = {k: v.astype(np.float64) for k, v in model.params.items()}
    centers = None if model.rbf_centers is None else model.rbf_centers.astype(np.float64)
    return params64, centers


def _grad_failures(grads, ref):
    """Labelled description of every gradient outside GRAD_TOL."""
    failures = []
    for name in ref:
        scale = max(1.0, float(np.abs(ref[name]).max()))
        err = float(np.abs(grads[name].astype(np.float64) - ref[name]).max())
        if not err <= GRAD_TOL * scale:
            at = np.unravel_index(np.argmax(np.abs(grads[name] - ref[name])), ref[name].shape)
            at = tuple(int(i) for i in at)
            failures.append(f"{name}: max abs error {err:.3g} > {GRAD_TOL * scale:.3g} "
                            f"(max |ref| {scale:.3g}) at {at}: got {float(grads[name][at]):.6g}, "
                            f"reference {float(ref[name][at]):.6g}")
    return failures


@pytest.mark.parametrize("variant, c3", CONFIGS, ids=CONFIG_IDS)
def test_end_to_end_matches_float64_reference(variant, c3, batch):
    x, y = batch[0][:5], batch[1][:5]
    model = LeNet5(variant, c3=c3, seed=3)
    params64, centers = _ref_args(model)

    loss, grads = model.loss_and_grads(x, y)
    out = model.forward(x)
    ref_loss, ref_out, ref_grads = reference_loss_and_grads(
        params64, x.astype(np.float64), y, variant, model.table, centers)

    # Structure first: one float32 gradient per parameter, of the parameter's shape.
    assert isinstance(loss, float)
    assert list(grads) == list(model.params)
    assert set(ref_grads) == set(model.params)
    for name, gr in grads.items():
        assert gr.dtype == np.float32, f"{name}: gradient dtype {gr.dtype}"
        assert gr.shape == model.params[name].shape == ref_grads[name].shape, (
            f"{name}: gradient shape {gr.shape}, parameter {model.params[name].shape}, "
            f"reference {ref_grads[name].shape}")
    assert out.shape == ref_out.shape == (5, 10) and out.dtype == np.float32

    # Values.
    assert np.isfinite(ref_loss) and ref_loss > 0
    assert loss == pytest.approx(ref_loss, rel=LOSS_RTOL), f"loss {loss} vs reference {ref_loss}"
    out_err = float(np.abs(out - ref_out).max())
    assert out_err <= OUTPUT_TOL * max(1.0, float(np.abs(ref_out).max())), (
        f"network output differs from the reference by up to {out_err:.3g}")
    failures = _grad_failures(grads, ref_grads)
    assert not failures, "gradients differ from the float64 reference:\n" + "\n".join(failures)
    # The gradients are not trivially zero (the check above would pass on zeros + zeros).
    for name, gr in ref_grads.items():
        assert np.abs(gr).max() > 0, f"reference gradient of {name} is all zero"


@pytest.mark.parametrize("variant, c3", CONFIGS, ids=CONFIG_IDS)
def test_sgd_steps_match_float64_reference(variant, c3, batch):
    """Three train_step calls with SGD(0.05, momentum 0.9) track the same update in
    float64 on the reference network."""
    lr, mu = 0.05, 0.9
    model = LeNet5(variant, c3=c3, seed=5)
    opt = SGD(lr=lr, momentum=mu)
    p64, centers = _ref_args(model)
    velocity = {}
    for step in range(3):
        x, y = batch[0][5 * step:5 * step + 5], batch[1][5 * step:5 * step + 5]
        ref_loss, _, ref_g = reference_loss_and_grads(p64, x.astype(np.float64), y, variant,
                                                      model.table, centers)
        loss = model.train_step(x, y, opt)
        assert loss == pytest.approx(ref_loss, rel=LOSS_RTOL), f"step {step}: loss"
        for name in p64:  # torch-style momentum: buf = g, then buf = mu * buf + g
            velocity[name] = ref_g[name] if step == 0 else mu * velocity[name] + ref_g[name]
            p64[name] = p64[name] - lr * velocity[name]
        for name, value in model.params.items():
            np.testing.assert_allclose(
                value, p64[name], rtol=STEP_TOL, atol=STEP_TOL,
                err_msg=f"{name} after SGD step {step + 1}")
    assert opt.step_count == 3


# ----------------------------------------------------------------------------- parameters
def test_num_parameters():
    assert LeNet5("lecun98").num_parameters() == 60_000
    assert LeNet5("modern").num_parameters() == 156 + 1516 + 48120 + 10164 + 850
    assert LeNet5("modern", c3="full").num_parameters() == 156 + 2416 + 48120 + 10164 + 850
    assert LeNet5("lecun98", c3="full").num_parameters() == 60_000 - 1516 + 2416


@pytest.mark.parametrize("variant, names", [("modern", MODERN_NAMES), ("lecun98", LECUN98_NAMES)])
def test_parameter_names_shapes_and_flat_views(variant, names):
    model = LeNet5(variant)
    assert list(model.params) == names
    assert list(model.grads) == names
    for name, value in model.params.items():
        assert value.shape == PARAM_SHAPES[name], name
        assert value.dtype == np.float32, name
        assert np.shares_memory(value, model.flat_params), f"{name} is not a view of flat_params"
        assert np.shares_memory(model.grads[name], model.flat_grads), name
    assert model.flat_params.size == sum(np.prod(PARAM_SHAPES[n]) for n in names)
    assert model.flat_params.dtype == model.flat_grads.dtype == np.float32
    assert model.flat_params.flags.c_contiguous and model.flat_grads.flags.c_contiguous
    assert np.all(np.isfinite(model.flat_params)) and np.any(model.flat_params != 0)


def test_lecun98_rbf_centers_are_fixed_codes_not_parameters():
    model = LeNet5("lecun98")
    centers = model.rbf_centers
    assert centers.shape == (10, 84) and centers.dtype == np.float32
    assert set(np.unique(centers)) == {-1.0, 1.0}
    np.testing.assert_array_equal(centers, codes.RBF_CODES)
    assert not centers.flags.writeable
    with pytest.raises(ValueError):
        centers[0, 0] = 0.0
    assert not any("rbf" in name for name in model.params)
    assert not np.shares_memory(centers, model.flat_params)
    assert LeNet5("modern").rbf_centers is None


def test_initialisation_is_seeded():
    a, b, c = LeNet5(seed=1), LeNet5(seed=1), LeNet5(seed=2)
    assert np.array_equal(a.flat_params, b.flat_params)
    assert not np.array_equal(a.flat_params, c.flat_params)
    a.reset_parameters(2)
    assert np.array_equal(a.flat_params, c.flat_params)


@pytest.mark.parametrize("init, root", [("fanin", False), ("fanin-sqrt", True), ("auto", False)])
def test_lecun98_initialisation_uses_the_fan_in(init, root):
    """Weights and biases uniform in +-2.4 / F ("fanin", the paper's formula as printed)
    or +-2.4 / sqrt(F) ("fanin-sqrt", for SDLM); F the fan-in (C3: of each map's
    table). "auto" is "fanin" for lecun98."""
    model = LeNet5("lecun98", seed=0, init=init)
    assert model.init == ("fanin" if init == "auto" else init)
    assert model.config()["init"] == model.init
    fan = {"c1": 25, "s2": 4, "s4": 4, "c5": 400, "f6": 120}
    per_map = LECUN_C3_TABLE.sum(axis=0) * 25
    for name, value in model.params.items():
        layer = name.split(".")[0]
        if layer == "c3":
            f = per_map[:, None, None, None] if name.endswith("weight") else per_map
        else:
            f = fan[layer]
        bound = 2.4 / (np.sqrt(f) if root else f)
        assert np.all(np.abs(value) <= bound * (1 + 1e-6)), name
        # and it uses the range: the largest |value| is near the bound (many samples)
        if value.size >= 100:
            assert np.max(np.abs(value) / bound) > 0.9, name


def test_initialisations_differ_and_he_is_the_modern_default():
    fanin = LeNet5("lecun98", seed=0).flat_params
    root = LeNet5("lecun98", seed=0, init="fanin-sqrt").flat_params
    assert np.allclose(root[:150] / fanin[:150], 5.0)  # C1: sqrt(25) = 5, same draws
    modern = LeNet5("modern", seed=0)
    assert modern.init == "he"
    w = modern.params["c5.weight"]
    assert abs(w.std() - np.sqrt(2 / 400)) < 0.05 * np.sqrt(2 / 400)
    assert not modern.params["c5.bias"].any()
    he = LeNet5("lecun98", seed=0, init="he")
    assert he.params["s2.coef"].any() and not he.params["s2.bias"].any()
    with pytest.raises(ValueError, match="init"):
        LeNet5("lecun98", init="xavier")


def test_init_survives_save_and_load(tmp_path):
    model = LeNet5("lecun98", seed=4, init="fanin")
    model.save(tmp_path / "m.npz")
    loaded = lenet_fast.load(tmp_path / "m.npz")
    assert loaded.init == "fanin" and np.array_equal(loaded.flat_params, model.flat_params)


@pytest.mark.parametrize("variant", ["modern", "lecun98"])
def test_writing_params_changes_the_output(variant, batch):
    x = batch[0][:8]
    model = LeNet5(variant, seed=0)
    before = model.forward(x)

    # In place, through the view.
    model.params["c1.weight"][0] *= 2.0
    after_inplace = model.forward(x)
    assert not np.array_equal(before, after_inplace)

    # By assignment: copies into the existing view, so flat_params sees it.
    view = model.params["f6.weight"]
    new = np.full((84, 120), 0.01, dtype=np.float32)
    model.params["f6.weight"] = new
    assert model.params["f6.weight"] is view
    assert np.array_equal(view, new)
    assert np.shares_memory(model.params["f6.weight"], model.flat_params)
    after_assign = model.forward(x)
    assert not np.array_equal(after_inplace, after_assign)

    # Assigning float64 values is accepted (cast into the float32 view).
    model.params["c1.bias"] = np.zeros(6)
    assert model.params["c1.bias"].dtype == np.float32
    assert np.all(model.params["c1.bias"] == 0)
    current = model.forward(x)

    with pytest.raises(ValueError, match=r"c1\.weight must have shape \(6, 1, 5, 5\)"):
        model.params["c1.weight"] = np.zeros((6, 5, 5), np.float32)
    with pytest.raises(ValueError):
        model.params["f6.bias"] = np.zeros(85, np.float32)
    with pytest.raises(KeyError, match="unknown parameter"):
        model.params["c7.weight"] = np.zeros(3, np.float32)
    assert np.array_equal(model.forward(x), current)  # failed assignments changed nothing


@pytest.mark.parametrize("variant", ["modern", "lecun98"])
def test_c3_unconnected_weights_zero_after_init(variant):
    model = LeNet5(variant, seed=0)
    w = model.params["c3.weight"]  # (Cout, Cin, 5, 5); table is (Cin, Cout)
    unconnected = ~LECUN_C3_TABLE.T
    assert unconnected.sum() == 36
    assert np.all(w[unconnected] == 0)
    assert np.all(w[~unconnected] != 0)
    dense = LeNet5(variant, c3="full", seed=0).params["c3.weight"]
    assert np.all(dense != 0)


@pytest.mark.parametrize("variant", ["modern", "lecun98"])
@pytest.mark.parametrize("make_opt", [
    lambda: SGD(lr=0.05, momentum=0.9, weight_decay=1e-3),
    lambda: SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda: Adam(lr=1e-3, weight_decay=1e-3),
], ids=["sgd-wd", "nesterov-wd", "adam-wd"])
def test_c3_unconnected_weights_stay_zero_when_training(variant, make_opt, batch):
    model = LeNet5(variant, seed=0)
    opt = make_opt()
    x, y = batch
    start = model.params["c3.weight"].copy()
    for step in range(4):
        model.train_step(x[16 * step:16 * step + 16], y[16 * step:16 * step + 16], opt)
    w = model.params["c3.weight"]
    unconnected = ~LECUN_C3_TABLE.T
    assert np.all(w[unconnected] == 0), "training moved unconnected C3 weights"
    assert np.all(model.grads["c3.weight"][unconnected] == 0)
    assert not np.array_equal(w[~unconnected], start[~unconnected])  # the others did train


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning",
                            "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("variant", ["modern", "lecun98"])
def test_train_step_never_makes_the_weights_non_finite(variant, batch):
    """A NaN loss skips the update; an update that overflows is undone (loss inf)."""
    x, y = batch
    model = LeNet5(variant, seed=0)
    opt = SGD(lr=0.01)
    nan_x = x[:8].copy()
    nan_x[2, 0, 16, 16] = np.nan
    before = model.flat_params.copy()
    assert np.isnan(model.train_step(nan_x, y[:8], opt))
    assert np.array_equal(model.flat_params, before) and opt.step_count == 0

    opt = SGD(lr=1e20)  # lecun98's squashing keeps the loss finite while weights explode
    for step in range(8):
        before = model.flat_params.copy()
        loss = model.train_step(x[8 * step:8 * step + 8], y[8 * step:8 * step + 8], opt)
        assert np.all(np.isfinite(model.flat_params)), f"non-finite weights after step {step}"
        if not np.isfinite(loss):
            assert np.array_equal(model.flat_params, before), "the bad update was kept"
            break
    else:
        pytest.fail("lr 1e20 never diverged")


# ----------------------------------------------------------------------------- inference API
@pytest.mark.parametrize("variant", ["modern", "lecun98"])
def test_predict_accepts_raw_uint8_and_preprocessed(variant, digits):
    images = digits[0][:50]
    model = LeNet5(variant, seed=0)
    x = preprocess(images)

    pred_raw = model.predict(images)
    pred_pre = model.predict(x)
    assert pred_raw.shape == (50,) and pred_raw.dtype == np.int64
    assert np.array_equal(pred_raw, pred_pre)
    assert pred_raw.min() >= 0 and pred_raw.max() <= 9
    # Batching does not change anything.
    assert np.array_equal(model.predict(images, batch_size=7), pred_raw)

    proba_raw = model.predict_proba(images)
    proba_pre = model.predict_proba(x)
    assert proba_raw.shape == (50, 10) and proba_raw.dtype == np.float32
    assert np.array_equal(proba_raw, proba_pre)
    assert np.all(proba_raw >= 0) and np.all(proba_raw <= 1)
    np.testing.assert_allclose(proba_raw.sum(axis=1), 1.0, rtol=0, atol=1e-5)
    assert np.array_equal(proba_raw.argmax(axis=1), pred_raw)

    # Higher score is better for both variants (lecun98 negates the RBF distances).
    out = model.forward(x)
    expected = out.argmin(axis=1) if variant == "lecun98" else out.argmax(axis=1)
    assert np.array_equal(pred_raw, expected)
    # A single 28x28 digit is a batch of one.
    assert np.array_equal(model.predict(images[3]), pred_raw[3:4])


@pytest.mark.parametrize("variant", ["modern", "lecun98"])
def test_bad_inputs_raise_clear_errors(variant, batch):
    model = LeNet5(variant, seed=0)
    x, y = batch[0][:4], batch[1][:4]

    with pytest.raises(TypeError, match="float32"):
        model.predict(x.astype(np.float64))
    with pytest.raises(TypeError, match="float32"):
        model.forward(x.astype(np.float64))
    with pytest.raises(TypeError, match="float32"):
        model.loss_and_grads(x.astype(np.float64), y)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        model.forward(x.tolist())
    with pytest.raises(ValueError, match=r"\(N, 1, 32, 32\)"):
        model.forward(x[:, :, 2:30, 2:30].copy())
    with pytest.raises(ValueError, match=r"\(N, 1, 32, 32\)"):
        model.predict_proba(x[:, 0])
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        model.predict(np.zeros((4, 32, 32), np.uint8))
    with pytest.raises(TypeError, match="float32"):
        model.predict(np.zeros((4, 28, 28), np.int64))

    with pytest.raises(ValueError, match="0..9"):
        model.loss_and_grads(x, np.array([0, 1, 10, 2]))
    with pytest.raises(ValueError, match="0..9"):
        model.loss_and_grads(x, np.array([0, -1, 3, 2]))
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\)"):
        model.loss_and_grads(x, y[:3])
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\)"):
        model.loss_and_grads(x, y[:, None])
    with pytest.raises(TypeError, match="integers"):
        model.loss_and_grads(x, y.astype(np.float32))
    with pytest.raises(ValueError, match="0..9"):
        model.train_step(x, np.array([0, 1, 2, 12]), SGD(lr=0.1))
    with pytest.raises(ValueError, match="variant"):
        LeNet5("lenet1")
    with pytest.raises(ValueError, match="c3"):
        LeNet5("modern", c3="sparse")
    with pytest.raises(ValueError, match="n_threads"):
        LeNet5("modern", n_threads=0)


def test_loss_and_grads_are_fresh_copies_and_do_not_accumulate(batch):
    model = LeNet5("modern", seed=0)
    x, y = batch[0][:8], batch[1][:8]
    loss1, g1 = model.loss_and_grads(x, y)
    loss2, g2 = model.loss_and_grads(x, y)
    assert loss1 == loss2
    for name in g1:
        assert np.array_equal(g1[name], g2[name]), name
        assert not np.shares_memory(g1[name], model.flat_grads), name
    assert np.array_equal(model.loss(x, y)[1], model.forward(x))
    assert model.loss(x, y)[0] == loss1


def test_empty_batch_forward():
    out = LeNet5("modern").forward(np.empty((0, 1, 32, 32), np.float32))
    assert out.shape == (0, 10) and out.dtype == np.float32


# ----------------------------------------------------------------------------- threads, buffers
@pytest.mark.parametrize("variant, c3", CONFIGS, ids=CONFIG_IDS)
def test_results_do_not_depend_on_thread_count(variant, c3, batch):
    x, y = batch
    results = {}
    for nt in (1, 2, 4):
        model = LeNet5(variant, c3=c3, seed=7, n_threads=nt)
        loss, grads = model.loss_and_grads(x, y)
        results[nt] = (loss, grads, model.forward(x))
    loss1, grads1, out1 = results[1]
    for nt in (2, 4):
        loss, grads, out = results[nt]
        assert loss == loss1, f"loss with {nt} threads"
        assert np.array_equal(out, out1), f"output with {nt} threads"
        for name in grads1:
            assert np.array_equal(grads[name], grads1[name]), f"{name} with {nt} threads"


@pytest.mark.parametrize("variant, c3", CONFIGS, ids=CONFIG_IDS)
def test_inference_does_not_depend_on_the_batch(variant, c3, digits):
    """A digit's outputs are the same bits whatever the batch size (1..300) and whichever
    other digits share its batch, for float32 inputs (`forward`) and uint8 digits
    (`predict_proba`), on the path this process runs (CI runs it on every path)."""
    images = digits[0]
    pool = np.concatenate([np.roll(images, k, axis=2) for k in range(5)])[:300]
    x = preprocess(pool)
    model = LeNet5(variant, c3=c3, seed=3, n_threads=2)
    alone_f = np.concatenate([model.forward(x[i:i + 1]) for i in range(len(x))])
    alone_p = np.concatenate([model.predict_proba(pool[i:i + 1]) for i in range(len(x))])
    for b in range(2, len(x) + 1):
        out = np.concatenate([model.forward(x[i:i + b]) for i in range(0, len(x), b)])
        assert np.array_equal(out, alone_f), f"forward, batch size {b}"
    for b in (2, 7, 16, 17, 33, 64, 65, 129, 300):
        out = np.concatenate([model.predict_proba(pool[i:i + b])
                              for i in range(0, len(x), b)])
        assert np.array_equal(out, alone_p), f"predict_proba, batch size {b}"
    rng = np.random.default_rng(0)
    for trial in range(5):
        perm = rng.permutation(len(x))
        cuts = np.sort(rng.choice(np.arange(1, len(x)), 6, replace=False))
        parts = np.split(perm, cuts)
        out = np.concatenate([model.forward(x[p]) for p in parts])
        assert np.array_equal(out, alone_f[perm]), f"shuffled batches, trial {trial}"
        out = np.concatenate([model.predict_proba(pool[p]) for p in parts])
        assert np.array_equal(out, alone_p[perm]), f"shuffled digit batches, trial {trial}"


def test_thread_count_can_change_on_a_model(batch):
    x, y = batch
    model = LeNet5("modern", seed=0, n_threads=1)
    loss1, g1 = model.loss_and_grads(x, y)
    model.n_threads = 3
    assert model.n_threads == 3
    loss3, g3 = model.loss_and_grads(x, y)
    assert loss1 == loss3 and all(np.array_equal(g1[k], g3[k]) for k in g1)


@pytest.mark.parametrize("variant", ["modern", "lecun98"])
def test_scratch_memory_is_reused(variant, batch):
    """Calls take their scratch memory from the model's pools and give it back: a second
    call of the same kind allocates nothing new."""
    x, y = batch
    model = LeNet5(variant, seed=0, n_threads=2)
    model.forward(x[:40])
    model.train_step(x[:40], y[:40], SGD(lr=0.01))
    ws, slots = list(model._workspaces._spare), list(model._slots._spare)
    assert len(ws) == 1 and len(slots) == 1
    model.forward(x[:40])
    model.predict(x[:33])
    model.train_step(x[:40], y[:40], SGD(lr=0.01))
    assert model._workspaces._spare == ws and model._workspaces._spare[0] is ws[0]
    assert model._slots._spare[0] is slots[0]


@pytest.mark.parametrize("variant", ["modern", "lecun98"])
def test_concurrent_calls_on_one_model_are_correct(variant, batch, digits):
    """Issue 13: one model used from many Python threads at once (a threaded server).
    Every call must equal the same call made alone, bit for bit (before the fix, calls of
    one batch size shared activation buffers)."""
    import threading

    x, y = batch
    digits = digits[0]
    model = LeNet5(variant, seed=4, n_threads=2)
    sizes = [1, 3, 16, 17, 40, 64]
    want = {n: (model.forward(x[:n]), model.predict(digits[-n:]),
                model.loss(x[:n], y[:n])[0]) for n in sizes}
    errors = []

    def worker(k):
        rng = np.random.default_rng(k)
        try:
            for _ in range(60):
                n = int(rng.choice(sizes))
                if not np.array_equal(model.forward(x[:n]), want[n][0]):
                    errors.append(("forward", n))
                if not np.array_equal(model.predict(digits[-n:]), want[n][1]):
                    errors.append(("predict", n))
                if model.loss(x[:n], y[:n])[0] != want[n][2]:
                    errors.append(("loss", n))
        except Exception as exc:            # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_batch_size_must_be_a_positive_integer(batch):
    x, _ = batch
    model = LeNet5("modern", seed=0)
    for bad in (0, -1, 2.5, True, None):
        for call in (model.predict, model.predict_proba, model.scores):
            with pytest.raises(ValueError, match="batch_size"):
                call(x[:4], batch_size=bad)
    assert np.array_equal(model.predict(x[:10], batch_size=3), model.predict(x[:10]))


@pytest.mark.parametrize("variant", ["modern", "lecun98"])
def test_empty_training_batch_is_refused(variant):
    """An empty batch has no mean loss: a ValueError, the same in every build."""
    model = LeNet5(variant, seed=0)
    x = np.empty((0, 1, 32, 32), np.float32)
    y = np.empty(0, np.int64)
    for call in (lambda: model.train_step(x, y, SGD(lr=0.1)), lambda: model.loss_and_grads(x, y),
                 lambda: model.loss(x, y)):
        with pytest.raises(ValueError, match="empty"):
            call()
    assert model.predict(np.empty((0, 28, 28), np.uint8)).shape == (0,)


def test_train_step_needs_an_optimizer(batch):
    x, y = batch
    model = LeNet5("modern", seed=0)
    before = model.flat_params.copy()
    with pytest.raises(TypeError, match="optimizer"):
        model.train_step(x[:4], y[:4], None)
    assert np.array_equal(model.flat_params, before)


@pytest.mark.parametrize("variant", ["modern", "lecun98"])
def test_uint8_digits_train_like_their_preprocessed_copy(variant, batch, digits):
    """train_step and loss_and_grads take raw uint8 digits (preprocessed inside the
    compiled pass) and give the same bits as the float32 input."""
    x, y = batch
    digits = digits[0]
    model = LeNet5(variant, seed=1, n_threads=2)
    l8, g8 = model.loss_and_grads(digits[:37], y[:37])
    l32, g32 = model.loss_and_grads(preprocess(digits[:37]), y[:37])
    assert l8 == l32 and all(np.array_equal(g8[k], g32[k]) for k in g8)


@pytest.mark.parametrize("variant", ["modern", "lecun98"])
def test_activations(variant, batch):
    x, _ = batch
    model = LeNet5(variant, seed=2, n_threads=2)
    acts = model.activations(x[:20])
    shapes = {"input": (20, 1, 32, 32), "c1": (20, 6, 28, 28), "s2": (20, 6, 14, 14),
              "c3": (20, 16, 10, 10), "s4": (20, 16, 5, 5), "c5": (20, 120), "f6": (20, 84),
              "output": (20, 10)}
    assert {k: v.shape for k, v in acts.items()} == shapes
    assert np.array_equal(acts["output"], model.forward(x[:20]))
    p = model.params
    if variant == "modern":
        c1 = np.maximum(R.conv_forward(x[:20].astype(np.float64), p["c1.weight"], p["c1.bias"]), 0)
        np.testing.assert_allclose(acts["c1"], c1, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(acts["s2"], R.maxpool_forward(acts["c1"]))
    else:
        f = R.scaled_tanh_forward
        c1 = f(R.conv_forward(x[:20].astype(np.float64), p["c1.weight"], p["c1.bias"]))
        np.testing.assert_allclose(acts["c1"], c1, rtol=1e-4, atol=1e-5)
    assert not np.shares_memory(acts["input"], x)


# ----------------------------------------------------------------------------- RBF codes
def test_rbf_codes():
    c = codes.RBF_CODES
    assert c.shape == (10, 84) and c.dtype == np.float32
    assert set(np.unique(c)) == {-1.0, 1.0}
    assert not c.flags.writeable
    assert codes.DIGIT_BITMAPS.shape == (10, 12, 7)
    np.testing.assert_array_equal(codes.DIGIT_BITMAPS.reshape(10, 84), c)
    hamming = {(i, j): int((c[i] != c[j]).sum()) for i, j in itertools.combinations(range(10), 2)}
    worst = min(hamming, key=hamming.get)
    assert hamming[worst] >= 10, f"digits {worst} differ in only {hamming[worst]} of 84 pixels"
    # The bitmap of each digit renders to text as drawn.
    assert codes.render(1).splitlines()[0] == "...X..."


@pytest.mark.parametrize("variant", ["modern", "lecun98"])
def test_batches_larger_than_a_chunk(variant):
    """A pass runs blocks of samples and sums their weight gradients in block order: a
    batch of 70 (eight blocks of 8 and one of 6) must give the mean of its parts'
    gradients, and the same bits at 1, 2 and 4 threads (both presets)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((70, 1, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 70)
    runs = [LeNet5(variant, seed=3, n_threads=nt).loss_and_grads(x, y) for nt in (1, 2, 4)]
    for loss, grads in runs[1:]:
        assert loss == runs[0][0]
        for name in grads:
            assert np.array_equal(grads[name], runs[0][1][name]), name
    loss, grads = runs[0]
    model = LeNet5(variant, seed=3, n_threads=2)
    parts = [model.loss_and_grads(x[a:b], y[a:b]) + (b - a,) for a, b in ((0, 32), (32, 64), (64, 70))]
    assert loss == pytest.approx(sum(l * n for l, _, n in parts) / 70, rel=1e-5)
    for name in grads:
        mean = sum(g[name].astype(np.float64) * n for _, g, n in parts) / 70
        scale = max(1e-6, float(np.abs(mean).max()))
        assert float(np.abs(grads[name] - mean).max()) <= 1e-4 * scale, name


def test_pacer_trains_on_one_thread_while_it_is_faster():
    """Beside a busy core one thread can train faster than two: the pacer runs the faster
    choice and probes the other every PROBE passes, following the machine both ways."""
    from lenet_fast._model._runtime import _Pacer

    p = _Pacer()
    speed = {2: 1.0, 1: 3.0}                # quiet machine: two threads 3x faster

    def passes(k):
        used = []
        for _ in range(k):
            nt = p.choose(64, 2)
            p.record(64, nt, speed[nt])
            used.append(nt)
        return used

    used = passes(64)
    assert used.count(1) <= 3 and used[-2] == 2          # probes only
    speed[2] = 6.0                          # a busy core: two threads now 2x slower
    used = passes(96)
    assert used[-32:].count(1) >= 30                    # switched to one thread
    speed[2] = 1.0                          # the neighbour is gone
    used = passes(96)
    assert used[-32:].count(2) >= 30                    # back to two


def test_pacer_keeps_all_threads_through_single_slow_passes():
    """On a quiet machine a pass now and then loses a time slice to another process (a
    hiccup of several passes' time): the pacer must not switch to one thread for it."""
    from lenet_fast._model._runtime import _Pacer

    p = _Pacer()
    rng = np.random.default_rng(0)
    used = []
    for _ in range(2000):
        nt = p.choose(64, 2)
        seconds = 1.0 if nt == 2 else 1.8    # two threads 1.8x faster ...
        if rng.random() < 0.05:
            seconds += 3.3                   # ... but 5% of the passes lose a 3.3x slice
        p.record(64, nt, seconds)
        used.append(nt)
    assert used.count(1) / len(used) < 0.06    # the probes (1 in 32) and little else


def test_pacer_is_not_switched_back_by_one_lucky_probe():
    """Beside a busy core a probe of two threads is sometimes fast (the neighbour was off
    the CPU for that pass) while two threads are slower on average: a probe moves the
    estimate only halfway, so a lucky probe alone does not bring back two threads."""
    from lenet_fast._model._runtime import _Pacer

    p = _Pacer()
    used = []
    for k in range(1000):
        nt = p.choose(64, 2)
        lucky = p._probing        # every probe of two threads is lucky
        seconds = 1.5 if nt == 1 else (0.9 if lucky else 4.0)
        p.record(64, nt, seconds)
        used.append(nt)
    probes = len(used[200:]) // _Pacer.PROBE + 1
    assert used[200:].count(2) <= 2 * probes      # each probe, and at most one pass more


def test_flush_to_zero_stays_inside_the_compiled_code(batch):
    """The passes and updates run with subnormals flushed (they are ~100x slower on
    x86), and give the caller's thread its floating-point mode back: numpy still makes
    subnormals after them."""
    x, y = batch
    model = LeNet5("modern", seed=0, n_threads=2)
    model.train_step(x[:20], y[:20], SGD(lr=0.01, momentum=0.9))
    model.predict(x[:3])
    tiny = np.float32(1e-30) * np.float32(1e-10)
    assert tiny != 0 and tiny < np.finfo(np.float32).tiny


@pytest.mark.parametrize("variant", ["modern", "lecun98"])
def test_uint8_digits_through_activations_and_curvature(variant, digits):
    """Raw digits are preprocessed inside the pass: the same bits as preprocessing first."""
    images = digits[0][:20]
    model = LeNet5(variant, seed=5, n_threads=2)
    a8, a32 = model.activations(images), model.activations(preprocess(images))
    assert all(np.array_equal(a8[k], a32[k]) for k in a32)
    if variant == "lecun98":
        assert np.array_equal(model.gauss_newton_diagonal(images),
                              model.gauss_newton_diagonal(preprocess(images)))
