"""Tests for lenet_fast.augment: the Cython warps against a NumPy reference, the
random augmenters' determinism, input checks, and Trainer / CLI integration."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lenet_fast import augment
from lenet_fast._isa import kernels as _kernels
from lenet_fast.augment import Affine, Elastic, make_augmenter
from lenet_fast._training.augment import affine_warp, elastic_warp, gaussian_taps

IDENTITY = np.array([1, 0, 0, 1, 0, 0], np.float32)


def _images(n=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def _bilinear_reference(images, sx, sy):
    """NumPy bilinear sampling of images (N, H, W) at float64 points sx, sy (N, H, W);
    zero outside; rounded to the nearest grey level."""
    n, h, w = images.shape
    x0 = np.floor(sx).astype(np.int64)
    y0 = np.floor(sy).astype(np.int64)
    fx, fy = sx - x0, sy - y0
    nn = np.arange(n)[:, None, None]

    def tap(x, y):
        inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        return np.where(inside, images[nn, np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)], 0.0)

    v = ((1 - fy) * ((1 - fx) * tap(x0, y0) + fx * tap(x0 + 1, y0))
         + fy * ((1 - fx) * tap(x0, y0 + 1) + fx * tap(x0 + 1, y0 + 1)))
    return np.clip(np.floor(v + 0.5), 0, 255)


def _affine_reference(images, params):
    p = params.astype(np.float64)
    r = np.arange(28) - 13.5
    xr, yr = r[None, None, :], r[None, :, None]
    a, b, c, d, tx, ty = (p[:, k, None, None] for k in range(6))
    return _bilinear_reference(images, a * xr + b * yr + 13.5 + tx, c * xr + d * yr + 13.5 + ty)


def test_identity_is_exact():
    imgs = _images()
    params = np.tile(IDENTITY, (len(imgs), 1))
    np.testing.assert_array_equal(affine_warp(imgs, params), imgs)
    zero = np.zeros(imgs.shape, np.float32)
    np.testing.assert_array_equal(elastic_warp(imgs, zero, zero), imgs)


@pytest.mark.parametrize("tx,ty", [(-2, 0), (0, 3), (1, -1), (-5, 4)])
def test_integer_translation_shifts_exactly(tx, ty):
    imgs = _images(4)
    params = np.tile(np.array([1, 0, 0, 1, tx, ty], np.float32), (4, 1))
    out = affine_warp(imgs, params)
    # out[y, x] = in[y + ty, x + tx], background where that is outside.
    expected = np.zeros_like(imgs)
    ys, xs = slice(max(0, -ty), min(28, 28 - ty)), slice(max(0, -tx), min(28, 28 - tx))
    expected[:, ys, xs] = imgs[:, ys.start + ty:ys.stop + ty, xs.start + tx:xs.stop + tx]
    np.testing.assert_array_equal(out, expected)
    dx = np.full(imgs.shape, tx, np.float32)
    dy = np.full(imgs.shape, ty, np.float32)
    np.testing.assert_array_equal(elastic_warp(imgs, dx, dy), expected)


def test_affine_matches_reference():
    imgs = _images(32)
    params = Affine(rotate=15, shift=3, seed=3).sample_params(32)
    out = affine_warp(imgs, params, n_threads=2)
    diff = np.abs(out.astype(np.int64) - _affine_reference(imgs, params))
    assert diff.max() <= 1
    assert (diff > 0).mean() < 0.01


def test_elastic_matches_reference():
    imgs = _images(32)
    rng = np.random.default_rng(5)
    dx = (rng.standard_normal(imgs.shape) * 3).astype(np.float32)
    dy = (rng.standard_normal(imgs.shape) * 3).astype(np.float32)
    out = elastic_warp(imgs, dx, dy, n_threads=2)
    grid = np.arange(28, dtype=np.float64)
    ref = _bilinear_reference(imgs, grid[None, None, :] + dx, grid[None, :, None] + dy)
    diff = np.abs(out.astype(np.int64) - ref)
    assert diff.max() <= 1
    assert (diff > 0).mean() < 0.01


def test_far_outside_is_background():
    imgs = _images(2)
    params = np.tile(np.array([1, 0, 0, 1, 1e9, -1e9], np.float32), (2, 1))
    assert not affine_warp(imgs, params).any()


def test_gaussian_smooth_matches_numpy():
    rng = np.random.default_rng(1)
    fields = rng.uniform(-1, 1, (6, 28, 28)).astype(np.float32)
    taps = gaussian_taps(4.0)
    out = np.empty_like(fields)
    _kernels.gaussian_smooth(out, fields, taps, 34.0, 2)
    g, r = taps.astype(np.float64), len(taps) // 2
    p = np.pad(fields.astype(np.float64), ((0, 0), (r, r), (r, r)))
    t = sum(g[k] * p[:, :, k:k + 28] for k in range(2 * r + 1))
    ref = 34.0 * sum(g[k] * t[:, k:k + 28, :] for k in range(2 * r + 1))
    np.testing.assert_allclose(out, ref, atol=1e-4)


@pytest.mark.parametrize("cls", [Affine, Elastic, lambda **kw: Elastic(affine=Affine(), **kw)])
def test_deterministic_and_thread_independent(cls):
    imgs = _images(40)
    a, b, c = cls(seed=7, n_threads=1), cls(seed=7, n_threads=2), cls(seed=8, n_threads=2)
    first = [a(imgs), a(imgs)]
    second = [b(imgs), b(imgs)]
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[0], first[1])  # fresh draws per call
    assert not np.array_equal(first[0], c(imgs))
    assert first[0].dtype == np.uint8 and first[0].shape == imgs.shape


@pytest.mark.parametrize("cls", [Affine, Elastic])
def test_state_round_trip(cls):
    imgs = _images(8)
    a = cls(seed=1)
    a(imgs)
    saved = json.loads(json.dumps(a.state()))  # JSON-able
    expected = a(imgs)
    b = cls(seed=99)
    b.set_state(saved)
    np.testing.assert_array_equal(b(imgs), expected)


def test_distortions_are_moderate():
    # The defaults move ink but keep the digit: same total ink within ~25% on average.
    imgs = _images(64)
    imgs[:, :4] = imgs[:, -4:] = 0
    imgs[:, :, :4] = imgs[:, :, -4:] = 0
    for aug in (Affine(), Elastic()):
        out = aug(imgs)
        ratio = out.sum(axis=(1, 2)) / imgs.sum(axis=(1, 2))
        assert 0.75 < ratio.mean() < 1.25
        assert not np.array_equal(out, imgs)


def test_out_buffer_reused():
    imgs = _images(4)
    buf = np.empty_like(imgs)
    assert Affine()(imgs, out=buf) is buf
    with pytest.raises(ValueError, match="overlap"):
        Affine()(imgs, out=imgs)


def test_bad_inputs():
    imgs = _images(3)
    with pytest.raises(TypeError, match="uint8"):
        Affine()(imgs.astype(np.float32))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        Affine()(imgs.tolist())
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        Elastic()(imgs[0])
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        Affine()(np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"params must have shape \(3, 6\)"):
        affine_warp(imgs, np.zeros((2, 6), np.float32))
    with pytest.raises(TypeError, match="params must be float32"):
        affine_warp(imgs, np.zeros((3, 6)))
    with pytest.raises(ValueError, match="finite"):
        affine_warp(imgs, np.full((3, 6), np.nan, np.float32))
    with pytest.raises(ValueError, match="dy must have shape"):
        elastic_warp(imgs, np.zeros(imgs.shape, np.float32), np.zeros((3, 28, 27), np.float32))
    with pytest.raises(ValueError, match="out must have shape"):
        Affine()(imgs, out=np.empty((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="sigma"):
        Elastic(sigma=0)
    with pytest.raises(ValueError, match="shift"):
        Affine(shift=-1)
    with pytest.raises(ValueError, match="unknown augmenter"):
        make_augmenter("rotate")
    assert make_augmenter("none") is None
    assert isinstance(make_augmenter("elastic"), Elastic)


# ---------------------------------------------------------------- Trainer / CLI


def _fit(train, aug_name, tmp_path=None, epochs=2, resume=None, threads=2):
    from lenet_fast import LeNet5
    from lenet_fast.optim import SGD
    from lenet_fast import Trainer

    model = LeNet5("modern", seed=0, n_threads=threads)
    trainer = Trainer(model, SGD(lr=0.05, momentum=0.9), batch_size=64, epochs=epochs,
                      schedule="onecycle", seed=3, progress=False, checkpoint_dir=tmp_path,
                      augment=make_augmenter(aug_name, n_threads=threads))
    history = trainer.fit(train, resume=resume)
    return model, history


@pytest.mark.parametrize("aug_name", ["affine", "elastic"])
def test_trainer_resume_is_bitwise(mnist_train, tmp_path, aug_name):
    train = (mnist_train[0][:640], mnist_train[1][:640])
    full, hist = _fit(train, aug_name, tmp_path)
    plain, _ = _fit(train, "none", epochs=2, threads=1)
    assert not np.array_equal(full.flat_params, plain.flat_params)  # augmentation acted
    resumed, hist2 = _fit(train, aug_name, resume=tmp_path / "epoch-001.npz", threads=1)
    np.testing.assert_array_equal(resumed.flat_params, full.flat_params)
    assert hist2[-1]["train_loss"] == hist[-1]["train_loss"]


def test_trainer_resume_needs_same_augmenter(mnist_train, tmp_path):
    train = (mnist_train[0][:128], mnist_train[1][:128])
    _fit(train, "affine", tmp_path, epochs=2)
    with pytest.raises(ValueError, match="augment"):
        _fit(train, "elastic", resume=tmp_path / "epoch-001.npz")
    with pytest.raises(ValueError, match="augment"):
        _fit(train, "none", resume=tmp_path / "epoch-001.npz")


def test_trainer_rejects_bad_augment():
    from lenet_fast import LeNet5
    from lenet_fast.optim import SGD
    from lenet_fast import Trainer

    with pytest.raises(TypeError, match="augment"):
        Trainer(LeNet5("modern"), SGD(lr=0.01), augment="affine")


def test_cli_train_augment(mnist_dir, tmp_path, capsys):
    from lenet_fast.cli import main

    out, metrics = tmp_path / "m.npz", tmp_path / "m.json"
    code = main(["train", "--augment", "affine", "--train-limit", "256", "--test-limit", "100",
                 "--epochs", "1", "--no-progress", "--data-dir", str(mnist_dir), "--out",
                 str(out), "--metrics-json", str(metrics), "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    assert json.loads(metrics.read_text())["augment"] == "affine"
    assert main(["train", "--augment", "warp", "--no-progress"]) == 2


@pytest.mark.parametrize("with_affine", [False, True])
def test_elastic_call_matches_its_fields(with_affine):
    # The fused kernel (noise -> smoothing -> affine + elastic warp) equals the
    # step-by-step route: sample_fields, then elastic_warp (plus the affine map).
    imgs = _images(12)
    make = lambda: Elastic(seed=4, affine=Affine() if with_affine else None)  # noqa: E731
    got = make()(imgs)
    ref = make()
    dx, dy = ref.sample_fields(12)
    if with_affine:
        p = make()._draw(12)[1].astype(np.float64)  # the call's affine params
        r = np.arange(28) - 13.5
        xr, yr = r[None, None, :], r[None, :, None]
        a, b, c, d, tx, ty = (p[:, k, None, None] for k in range(6))
        sx = a * xr + b * yr + 13.5 + tx + dx
        sy = c * xr + d * yr + 13.5 + ty + dy
        diff = np.abs(got.astype(np.int64) - _bilinear_reference(imgs, sx, sy))
        assert diff.max() <= 1
    else:
        np.testing.assert_array_equal(got, elastic_warp(imgs, dx, dy))
