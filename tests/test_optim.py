"""Tests for lenet_fast.optim: update rules, serialisation, schedules, allocation."""

from __future__ import annotations

import json
import math
import tracemalloc

import numpy as np
import pytest

from lenet_fast import optim, schedules

N = 257  # deliberately not a multiple of any SIMD width


def _vectors(n=N, steps=8, seed=0):
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(n).astype(np.float32)
    grads = [rng.standard_normal(n).astype(np.float32) for _ in range(steps)]
    return p0, grads


# --------------------------------------------------------------------------
# float64 reference implementations, written straight from the formulas
# --------------------------------------------------------------------------


class RefSGD:
    def __init__(self, p, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.p = p.astype(np.float64)
        self.lr, self.mu, self.nesterov, self.wd = lr, momentum, nesterov, weight_decay
        self.buf = None

    def step(self, grad):
        g = grad.astype(np.float64) + self.wd * self.p
        if self.mu:
            self.buf = g.copy() if self.buf is None else self.mu * self.buf + g
            g = g + self.mu * self.buf if self.nesterov else self.buf
        self.p = self.p - self.lr * g


class RefAdam:
    def __init__(self, p, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.p = p.astype(np.float64)
        self.lr, (self.b1, self.b2), self.eps, self.wd = lr, betas, eps, weight_decay
        self.m = np.zeros_like(self.p)
        self.v = np.zeros_like(self.p)
        self.t = 0

    def step(self, grad):
        self.t += 1
        g = grad.astype(np.float64) + self.wd * self.p
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        m_hat = self.m / (1 - self.b1**self.t)
        v_hat = self.v / (1 - self.b2**self.t)
        self.p = self.p - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def _compare(opt, ref, p0, grads, rtol=1e-6, atol=1e-6):
    p = p0.copy()
    for i, g in enumerate(grads):
        g_before = g.copy()
        opt.step(p, g)
        ref.step(g)
        np.testing.assert_array_equal(g, g_before)  # grads are not modified
        np.testing.assert_allclose(p, ref.p, rtol=rtol, atol=atol, err_msg=f"step {i}")
    assert opt.step_count == len(grads)
    assert p.dtype == np.float32


# --------------------------------------------------------------------------
# update rules
# --------------------------------------------------------------------------

SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.05, momentum=0.8, weight_decay=0.05),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05),
]


@pytest.mark.parametrize("kw", SGD_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_sgd_matches_reference(kw):
    p0, grads = _vectors(seed=1)
    _compare(optim.SGD(**kw), RefSGD(p0, **kw), p0, grads)


ADAM_CASES = [
    dict(lr=1e-2),
    dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=1e-2, weight_decay=0.1),
    dict(lr=3e-3, betas=(0.0, 0.5), eps=1e-3, weight_decay=0.01),
]


@pytest.mark.parametrize("kw", ADAM_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_adam_matches_reference(kw):
    p0, grads = _vectors(seed=2)
    _compare(optim.Adam(**kw), RefAdam(p0, **kw), p0, grads)


def test_adam_first_step_is_lr_times_sign():
    # with bias correction, the first update is lr * g / (|g| + eps) ~ lr * sign(g)
    p0, grads = _vectors(seed=3, steps=1)
    p = p0.copy()
    optim.Adam(lr=0.01).step(p, grads[0])
    np.testing.assert_allclose(p0 - p, 0.01 * np.sign(grads[0]), rtol=1e-4)


def test_lr_is_read_every_step_and_zero_lr_freezes_params():
    p0, grads = _vectors(seed=4, steps=4)
    opt = optim.SGD(lr=0.1, momentum=0.9)
    ref = RefSGD(p0, lr=0.1, momentum=0.9)
    p = p0.copy()
    for i, g in enumerate(grads):
        opt.lr = ref.lr = 0.1 / (i + 1)
        opt.step(p, g)
        ref.step(g)
    np.testing.assert_allclose(p, ref.p, rtol=1e-6, atol=1e-6)
    assert opt.base_lr == 0.1

    adam = optim.Adam(lr=0.0)
    p = p0.copy()
    adam.step(p, grads[0])
    np.testing.assert_array_equal(p, p0)
    assert adam.step_count == 1


def test_lr_setter_normalises_and_validates():
    opt = optim.SGD()
    opt.lr = np.float64(0.25)
    assert type(opt.lr) is float and opt.lr == 0.25
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lr"):
            opt.lr = bad


def _quadratic(n=64, seed=5):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 2.0, n).astype(np.float32)
    c = rng.standard_normal(n).astype(np.float32)

    def loss(p):
        return 0.5 * float(np.sum(a * (p - c) ** 2))

    def grad(p, out):
        np.subtract(p, c, out=out)
        np.multiply(out, a, out=out)

    return loss, grad, c


@pytest.mark.parametrize(
    "opt,steps",
    [
        (optim.SGD(lr=0.1, momentum=0.9), 300),
        (optim.SGD(lr=0.1, momentum=0.9, nesterov=True), 300),
        (optim.Adam(lr=0.05), 1000),
    ],
    ids=["sgd-momentum", "sgd-nesterov", "adam"],
)
def test_minimizes_quadratic(opt, steps):
    loss, grad, c = _quadratic()
    p = np.zeros_like(c)
    g = np.empty_like(c)
    start = loss(p)
    for _ in range(steps):
        grad(p, g)
        opt.step(p, g)
    assert loss(p) < 1e-6 * start
    np.testing.assert_allclose(p, c, atol=2e-3)


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factory,arg",
    [
        (lambda: optim.SGD(lr=-0.1), "lr"),
        (lambda: optim.SGD(momentum=-0.5), "momentum"),
        (lambda: optim.SGD(weight_decay=-1e-4), "weight_decay"),
        (lambda: optim.SGD(momentum=0.0, nesterov=True), "nesterov"),
        (lambda: optim.Adam(lr=-1e-3), "lr"),
        (lambda: optim.Adam(betas=(1.0, 0.999)), r"betas\[0\]"),
        (lambda: optim.Adam(betas=(0.9, -0.1)), r"betas\[1\]"),
        (lambda: optim.Adam(betas=(0.9,)), "betas"),
        (lambda: optim.Adam(eps=0.0), "eps"),
        (lambda: optim.Adam(weight_decay=-1.0), "weight_decay"),
        (lambda: optim.Adam(lr=float("nan")), "lr"),
    ],
)
def test_bad_hyperparameters(factory, arg):
    with pytest.raises(ValueError, match=arg):
        factory()


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam])
def test_bad_step_arguments(cls):
    p = np.zeros(10, dtype=np.float32)
    g = np.zeros(10, dtype=np.float32)
    with pytest.raises(TypeError, match="float32"):
        cls().step(p.astype(np.float64), g)
    with pytest.raises(TypeError, match="float32"):
        cls().step(p, g.astype(np.float64))
    with pytest.raises(TypeError, match="ndarray"):
        cls().step(list(p), g)
    with pytest.raises(ValueError, match="same shape"):
        cls().step(p, np.zeros(11, dtype=np.float32))
    with pytest.raises(ValueError, match="1-D"):
        cls().step(p.reshape(2, 5), g.reshape(2, 5))
    with pytest.raises(ValueError, match="contiguous"):
        cls().step(np.zeros(20, np.float32)[::2], g)
    with pytest.raises(ValueError, match="share memory"):
        cls().step(p, p)
    ro = p.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        cls().step(ro, g)

    # after binding to one size, a different size is rejected
    opt = cls()
    opt.step(p, g)
    with pytest.raises(ValueError, match="10 parameters"):
        opt.step(np.zeros(12, np.float32), np.zeros(12, np.float32))
    # new arrays of the same size are fine (re-validated, state kept)
    opt.step(p.copy(), g.copy())
    assert opt.step_count == 2


# --------------------------------------------------------------------------
# state dict
# --------------------------------------------------------------------------


def _run(opt, p, grads, lrs=None):
    for i, g in enumerate(grads):
        if lrs is not None:
            opt.lr = lrs[i]
        opt.step(p, g)


@pytest.mark.parametrize(
    "make,make_other",
    [
        (lambda: optim.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3), optim.SGD),
        (lambda: optim.SGD(lr=0.05, momentum=0.0), lambda: optim.SGD(momentum=0.5)),
        (lambda: optim.Adam(lr=3e-3, betas=(0.85, 0.995), eps=1e-7, weight_decay=1e-2), optim.Adam),
    ],
    ids=["sgd-nesterov-wd", "sgd-plain", "adam-wd"],
)
def test_state_dict_roundtrip_is_bitwise(tmp_path, make, make_other):
    p0, grads = _vectors(seed=6, steps=12)
    sched = schedules.CosineLR(0.05, total_steps=12, warmup_steps=2)
    lrs = [sched.lr_at(i) for i in range(12)]

    # uninterrupted run
    ref_opt = make()
    p_ref = p0.copy()
    _run(ref_opt, p_ref, grads, lrs)

    # interrupted run: 5 steps, save, restore into a fresh optimizer built
    # with different hyperparameters, continue
    opt = make()
    p = p0.copy()
    _run(opt, p, grads[:5], lrs[:5])
    state = opt.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert state["name"].shape == () and state["name"].dtype.kind == "U"
    path = tmp_path / "opt.npz"
    np.savez(path, params=p, **{"opt." + k: v for k, v in state.items()})
    del opt

    with np.load(path, allow_pickle=False) as f:
        p2 = f["params"].copy()
        loaded = {k[4:]: f[k] for k in f.files if k.startswith("opt.")}
    opt2 = make_other()
    opt2.load_state_dict(loaded)
    assert opt2.step_count == 5
    assert opt2.lr == lrs[4]
    assert opt2.base_lr == ref_opt.base_lr
    assert opt2._hp == ref_opt._hp
    _run(opt2, p2, grads[5:], lrs[5:])
    assert np.array_equal(p2, p_ref)
    assert opt2.step_count == ref_opt.step_count == 12


def test_state_dict_is_a_snapshot():
    p0, grads = _vectors(seed=7, steps=3)
    opt = optim.Adam()
    p = p0.copy()
    opt.step(p, grads[0])
    state = opt.state_dict()
    m = state["exp_avg"].copy()
    opt.step(p, grads[1])
    np.testing.assert_array_equal(state["exp_avg"], m)
    assert int(state["step"]) == 1


def test_state_dict_before_first_step():
    opt = optim.SGD(lr=0.3, momentum=0.9)
    state = opt.state_dict()
    assert int(state["num_params"]) == -1 and "momentum_buffer" not in state
    other = optim.SGD()
    other.load_state_dict(state)
    assert other.momentum == 0.9 and other.lr == 0.3 and other.step_count == 0
    p0, grads = _vectors(seed=8, steps=3)
    pa, pb = p0.copy(), p0.copy()
    _run(opt, pa, grads)
    _run(other, pb, grads)
    assert np.array_equal(pa, pb)


def test_load_state_dict_wrong_kind():
    p0, grads = _vectors(seed=9, steps=2)
    adam = optim.Adam()
    _run(adam, p0.copy(), grads)
    with pytest.raises(ValueError, match="adam"):
        optim.SGD().load_state_dict(adam.state_dict())
    sgd = optim.SGD(momentum=0.9)
    _run(sgd, p0.copy(), grads)
    with pytest.raises(ValueError, match="sgd"):
        optim.Adam().load_state_dict(sgd.state_dict())


@pytest.mark.parametrize("cls", [optim.Adam, lambda: optim.SGD(momentum=0.9)])
def test_load_state_dict_wrong_shape(cls):
    small = np.zeros(10, np.float32), np.ones(10, np.float32)
    big = np.zeros(12, np.float32), np.ones(12, np.float32)
    src = cls()
    src.step(*big)
    state = src.state_dict()

    # optimizer already bound to 10 parameters rejects a 12-parameter state
    dst = cls()
    dst.step(*small)
    before = dst.state_dict()
    with pytest.raises(ValueError, match="12"):
        dst.load_state_dict(state)
    after = dst.state_dict()  # failed load leaves the optimizer untouched
    assert before.keys() == after.keys()
    assert all(np.array_equal(before[k], after[k]) for k in before)

    # fresh optimizer accepts it but then refuses 10-parameter vectors
    fresh = cls()
    fresh.load_state_dict(state)
    with pytest.raises(ValueError, match="12 parameters"):
        fresh.step(*small)

    # a buffer whose shape disagrees with num_params
    bad = dict(state)
    key = next(k for k, v in state.items() if v.ndim == 1)
    bad[key] = np.zeros(11, np.float32)
    with pytest.raises(ValueError, match="shape"):
        cls().load_state_dict(bad)

    bad = dict(state)
    bad[key] = state[key].astype(np.float64)
    with pytest.raises(ValueError, match="float32"):
        cls().load_state_dict(bad)

    bad = dict(state)
    del bad[key]
    with pytest.raises(ValueError, match="missing"):
        cls().load_state_dict(bad)

    bad = dict(state, extra=np.array(1.0))
    with pytest.raises(ValueError, match="unexpected"):
        cls().load_state_dict(bad)


def test_load_state_dict_validates_hyperparameters():
    state = optim.Adam().state_dict()
    state["beta1"] = np.array(1.5)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam().load_state_dict(state)


# --------------------------------------------------------------------------
# factory
# --------------------------------------------------------------------------


def test_make_optimizer():
    sgd = optim.make_optimizer("sgd")
    assert isinstance(sgd, optim.SGD)
    assert sgd.lr == sgd.base_lr == 0.01 and sgd.momentum == 0.9 and not sgd.nesterov
    sgd = optim.make_optimizer("SGD", lr=0.2, momentum=0.0, weight_decay=1e-4)
    assert sgd.lr == 0.2 and sgd.momentum == 0.0 and sgd.weight_decay == 1e-4
    adam = optim.make_optimizer("adam")
    assert isinstance(adam, optim.Adam) and adam.lr == 1e-3 and adam.betas == (0.9, 0.999)
    adam = optim.make_optimizer("adam", lr=0.01, betas=(0.5, 0.9))
    assert adam.lr == 0.01 and adam.betas == (0.5, 0.9)
    with pytest.raises(ValueError, match="adam.*sgd"):
        optim.make_optimizer("rmsprop")


# --------------------------------------------------------------------------
# schedules
# --------------------------------------------------------------------------


def test_constant_lr():
    s = schedules.ConstantLR(0.05)
    assert s.lr_at(0) == s.lr_at(10**6) == 0.05


def test_step_lr_boundaries():
    s = schedules.StepLR(1.0, step_size=10, gamma=0.5)
    assert s.lr_at(0) == s.lr_at(9) == 1.0
    assert s.lr_at(10) == s.lr_at(19) == 0.5
    assert s.lr_at(20) == 0.25
    assert s.lr_at(35) == 0.125


def test_cosine_lr_values():
    s = schedules.CosineLR(0.1, total_steps=100, min_lr=0.001)
    assert s.lr_at(0) == pytest.approx(0.1, rel=1e-12)
    assert s.lr_at(50) == pytest.approx((0.1 + 0.001) / 2, rel=1e-12)
    assert s.lr_at(25) == pytest.approx(0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert s.lr_at(100) == pytest.approx(0.001, rel=1e-12)
    assert s.lr_at(1000) == 0.001
    lrs = [s.lr_at(i) for i in range(101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_cosine_lr_warmup():
    s = schedules.CosineLR(0.1, total_steps=110, warmup_steps=10)
    assert 0 < s.lr_at(0) <= 0.1 / 10
    warm = [s.lr_at(i) for i in range(11)]
    assert all(a < b for a, b in zip(warm, warm[1:]))
    assert s.lr_at(10) == pytest.approx(0.1)
    assert s.lr_at(60) == pytest.approx(0.05)
    assert s.lr_at(110) == 0.0


def test_onecycle_lr_values():
    s = schedules.OneCycleLR(0.1, total_steps=1000, pct_start=0.3, div_factor=25.0, final_div_factor=1e4)
    assert s.lr_at(0) == pytest.approx(0.1 / 25, rel=1e-12)
    # PyTorch convention: the peak is at step pct_start * total_steps - 1
    assert s.lr_at(299) == pytest.approx(0.1, rel=1e-12)
    assert s.lr_at(300) == pytest.approx(0.1, rel=1e-4)
    lrs = [s.lr_at(i) for i in range(1000)]
    assert max(lrs) == pytest.approx(0.1, rel=1e-12) and int(np.argmax(lrs)) == 299
    assert all(a <= b for a, b in zip(lrs[:300], lrs[1:300]))
    assert all(a >= b for a, b in zip(lrs[299:], lrs[300:]))
    final = 0.1 / (25 * 1e4)
    assert s.lr_at(999) == pytest.approx(final, rel=1e-12)
    assert s.lr_at(5000) == pytest.approx(final, rel=1e-12)


def test_schedules_reject_bad_args():
    with pytest.raises(ValueError, match="step_size"):
        schedules.StepLR(0.1, step_size=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        schedules.CosineLR(0.1, total_steps=10, warmup_steps=11)
    with pytest.raises(ValueError, match="pct_start"):
        schedules.OneCycleLR(0.1, total_steps=10, pct_start=1.0)
    with pytest.raises(ValueError, match="base_lr"):
        schedules.ConstantLR(-1.0)
    with pytest.raises(ValueError, match="step"):
        schedules.ConstantLR(0.1).lr_at(-1)


@pytest.mark.parametrize(
    "sched",
    [
        schedules.ConstantLR(0.01),
        schedules.StepLR(0.1, step_size=7, gamma=0.3),
        schedules.CosineLR(0.1, total_steps=50, min_lr=1e-4, warmup_steps=5),
        schedules.OneCycleLR(0.2, total_steps=80, pct_start=0.25, div_factor=10.0, final_div_factor=100.0),
    ],
    ids=lambda s: type(s).__name__,
)
def test_schedule_config_roundtrip(sched):
    cfg = json.loads(json.dumps(sched.to_config()))
    again = schedules.schedule_from_config(cfg)
    assert type(again) is type(sched) and again == sched
    assert [again.lr_at(i) for i in range(100)] == [sched.lr_at(i) for i in range(100)]


def test_schedule_from_config_errors():
    with pytest.raises(ValueError, match="cosine"):
        schedules.schedule_from_config({"name": "linear", "base_lr": 0.1})
    with pytest.raises(ValueError, match="invalid config"):
        schedules.schedule_from_config({"name": "constant", "base_lr": 0.1, "gamma": 2.0})
    with pytest.raises(ValueError, match="name"):
        schedules.schedule_from_config({"base_lr": 0.1})


def test_make_schedule():
    s = schedules.make_schedule("constant", 0.1, 900, 100)
    assert s == schedules.ConstantLR(0.1)
    s = schedules.make_schedule("step", 0.1, 900, 100)
    assert s == schedules.StepLR(0.1, step_size=300, gamma=0.1)
    assert s.lr_at(299) == 0.1 and s.lr_at(300) == pytest.approx(0.01) and s.lr_at(899) == pytest.approx(0.001)
    assert schedules.make_schedule("step", 0.1, 2, 1).step_size == 1
    assert schedules.make_schedule("cosine", 0.1, 900, 100) == schedules.CosineLR(0.1, 900)
    assert schedules.make_schedule("cosine", 0.1, 900, 100, warmup_steps=50).warmup_steps == 50
    assert schedules.make_schedule("onecycle", 0.1, 900, 100) == schedules.OneCycleLR(0.1, 900)
    with pytest.raises(ValueError, match="constant.*cosine.*onecycle.*step"):
        schedules.make_schedule("exp", 0.1, 900, 100)
    # every registered schedule can be made by name (the CLI offers them all)
    for name, cls in schedules.SCHEDULES.items():
        made = schedules.make_schedule(name, 0.1, 900, 100)
        assert type(made) is cls and made.name == name
    for name, cls in optim.OPTIMIZERS.items():
        assert type(optim.make_optimizer(name)) is cls and cls.name == name


# --------------------------------------------------------------------------
# allocation
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: optim.SGD(lr=0.01),
        lambda: optim.SGD(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4),
        lambda: optim.Adam(lr=1e-3, weight_decay=1e-4),
    ],
    ids=["sgd", "sgd-nesterov-wd", "adam-wd"],
)
def test_step_does_not_allocate(make):
    n = 60_000
    rng = np.random.default_rng(10)
    p = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    opt = make()
    sched = schedules.OneCycleLR(0.01, total_steps=1000)
    opt.step(p, g)  # warm-up: allocates state and scratch
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        for i in range(1000):
            opt.lr = sched.lr_at(i)
            opt.step(p, g)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < 64 * 1024, f"peak grew by {peak - base} bytes"
    assert np.isfinite(p).all()


def test_tracemalloc_sees_numpy_temporaries():
    # guard against the allocation test passing vacuously
    a = np.ones(60_000, np.float32)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        _ = a * 2.0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base >= a.nbytes


# --------------------------------------------------------------------------
# optional comparison with PyTorch
# --------------------------------------------------------------------------


def _torch_run(torch_opt_cls, p0, grads, **kw):
    torch = pytest.importorskip("torch")
    tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    topt = torch_opt_cls(torch, [tp], **kw)
    out = []
    for g in grads:
        tp.grad = torch.from_numpy(g.copy())
        topt.step()
        out.append(tp.detach().numpy().copy())
    return out


@pytest.mark.parametrize("name, kw, seed", [("SGD", kw, 11) for kw in SGD_CASES[2:]]
                         + [("Adam", kw, 12) for kw in ADAM_CASES])
def test_sgd_and_adam_match_torch(name, kw, seed):
    p0, grads = _vectors(seed=seed)
    expected = _torch_run(lambda torch, ps, **k: getattr(torch.optim, name)(ps, **k), p0, grads,
                          **kw)
    opt, p = getattr(optim, name)(**kw), p0.copy()
    for g, e in zip(grads, expected):
        opt.step(p, g)
        np.testing.assert_allclose(p, e, rtol=1e-5, atol=1e-6)


def test_onecycle_matches_torch():
    torch = pytest.importorskip("torch")
    tp = torch.nn.Parameter(torch.zeros(1))
    topt = torch.optim.SGD([tp], lr=0.1)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.1, total_steps=100, cycle_momentum=False)
    ours = schedules.OneCycleLR(0.1, total_steps=100)
    for i in range(100):
        assert ours.lr_at(i) == pytest.approx(topt.param_groups[0]["lr"], rel=1e-9)
        topt.step()
        tsched.step()
