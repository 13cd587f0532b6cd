"""Tests of lenet_fast.plot and lenet_fast.report: every figure for both presets, with
its content checked (axes, image sizes and values), and the HTML page.

Models are trained for 2 epochs on 1,000 digits (one thread) and shown 500 test digits.
"""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason='plots need matplotlib (pip install "lenet-fast[plot]")')

from matplotlib.image import imread  # noqa: E402

import lenet_fast  # noqa: E402
from lenet_fast import LECUN_C3_TABLE, LeNet5, Trainer, optim, plot, report  # noqa: E402
from lenet_fast.datasets import preprocess  # noqa: E402
from lenet_fast.metrics import evaluate  # noqa: E402

N_TEST = 500


@pytest.fixture(scope="module")
def eval_digits(mnist_test):
    return mnist_test[0][:N_TEST], mnist_test[1][:N_TEST]


@pytest.fixture(scope="module", params=["modern", "lecun98"])
def model(request, mnist_train, eval_digits):
    """A model of each preset trained for 2 epochs (history with test curves)."""
    net = LeNet5(request.param, seed=0, n_threads=1)
    Trainer(net, optim.make_optimizer("adam", 0.002), batch_size=32, epochs=2,
            progress=False).fit((mnist_train[0][:1000], mnist_train[1][:1000]),
                                validation=eval_digits)
    return net


def rendered(fig):
    """The figure drawn by Agg: uint8 (H, W, 4)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())


def image_axes(fig):
    """The axes of `fig` that show an image, in order."""
    return [ax for ax in fig.get_axes() if ax.images]


def test_learning_curves(model):
    history = model.history
    assert len(history) == 2 and "val_accuracy" in history[0]
    fig = plot.learning_curves(model)
    loss, err, lr = fig.axes[:3]
    assert [ax.get_title() for ax in (loss, err, lr)] == [
        "loss", "error (100% - accuracy)", "learning rate (end of epoch)"]
    assert [line.get_label() for line in loss.lines] == ["training", "test"]
    np.testing.assert_allclose(loss.lines[0].get_ydata(), [r["train_loss"] for r in history])
    np.testing.assert_allclose(loss.lines[1].get_ydata(), [r["val_loss"] for r in history])
    np.testing.assert_allclose(err.lines[1].get_ydata(),
                               [100 * (1 - r["val_accuracy"]) for r in history])
    assert err.get_yscale() == "log"
    paper = [line for line in err.lines if "LeCun" in line.get_label()]
    assert len(paper) == 1 and paper[0].get_ydata()[0] == pytest.approx(0.95)
    np.testing.assert_allclose(lr.lines[0].get_ydata(), [r["lr"] for r in history])
    np.testing.assert_array_equal(lr.lines[0].get_xdata(), [1, 2])
    assert rendered(fig).std() > 0


def test_learning_curves_without_history():
    with pytest.raises(ValueError, match="no training history"):
        plot.learning_curves(LeNet5("modern"))
    fig = plot.learning_curves([{"epoch": 1, "lr": 0.1, "train_loss": 1.0,
                                 "train_accuracy": 0.5}])
    assert [line.get_label() for line in fig.axes[0].lines] == ["training"]


def test_confusion_matrix_sums_to_the_test_set(model, eval_digits):
    metrics = evaluate(model, *eval_digits)
    fig = plot.confusion_matrix(model, *eval_digits)
    (ax,) = image_axes(fig)
    counts = np.asarray(ax.images[0].get_array())
    assert counts.shape == (10, 10)
    assert counts.sum() == N_TEST
    np.testing.assert_array_equal(counts, metrics["confusion"])
    assert len(ax.texts) == np.count_nonzero(counts)
    assert f"{100 * metrics['accuracy']:.2f}%" in ax.get_title()
    assert ax.get_xlabel() == "predicted digit" and ax.get_ylabel() == "true digit"


def test_c1_filters(model):
    fig = plot.c1_filters(model)
    axes = image_axes(fig)
    assert len(axes) == 6
    for k, ax in enumerate(axes):
        np.testing.assert_array_equal(ax.images[0].get_array(), model.params["c1.weight"][k, 0])
        assert ax.get_title() == f"C1 map {k}"
    lo, hi = axes[0].images[0].get_clim()
    assert lo == -hi == -np.abs(model.params["c1.weight"]).max()


def test_mosaic():
    tiles = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    tiles[1, 2] = np.nan
    m = plot.mosaic(tiles, 1)
    assert m.shape == (5, 8)
    np.testing.assert_array_equal(m[3:5, 3:5], tiles[1, 1])
    assert m.mask[2].all() and m.mask[:, 2].all() and m.mask[:, 5].all()  # gaps
    assert m.mask[3:5, 6:8].all() and not m.mask[3:5, 3:5].any()          # a NaN tile
    np.testing.assert_array_equal(plot.mosaic(tiles.reshape(6, 2, 2), 1, rows=2).mask, m.mask)


@pytest.mark.parametrize("c3", ["lecun", "full"])
def test_c3_filters_leave_unconnected_pairs_empty(model, c3):
    net = model if c3 == "lecun" else LeNet5(model.variant, c3="full", seed=0)
    table = LECUN_C3_TABLE if c3 == "lecun" else np.ones((6, 16), bool)
    fig = plot.c3_filters(net)
    (ax,) = [ax for ax in fig.get_axes() if ax.get_label() != "colorbar"]
    grid = ax.images[0].get_array()
    assert grid.shape == (35, 95)
    w = net.params["c3.weight"]
    for i, j in np.ndindex(6, 16):
        cell = grid[6 * i:6 * i + 5, 6 * j:6 * j + 5]
        if table[i, j]:
            assert not np.ma.getmaskarray(cell).any()
            np.testing.assert_array_equal(cell, w[j, i])
        else:
            assert np.ma.getmaskarray(cell).all()
    empty = sorted((round((p.get_y() + 0.5) / 6), round((p.get_x() + 0.5) / 6))
                   for p in ax.patches)
    assert empty == sorted(zip(*np.nonzero(~table)))
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(j) for j in range(16)]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"S2 {i}" for i in range(6)]
    lo, hi = ax.images[0].get_clim()
    assert hi == -lo == np.abs(w[table.T]).max()


def test_feature_maps(model, eval_digits):
    images, labels = eval_digits
    fig = plot.feature_maps(model, images[0], label=labels[0])
    acts = model.activations(preprocess(images[:1]))
    assert len(fig.axes) == 5
    expected = [("input", 1, 32, "input"), ("c1", 6, 28, "C1: 6 maps 28x28"),
                ("s2", 6, 14, "S2: 6 maps 14x14"), ("c3", 16, 10, "C3: 16 maps 10x10"),
                ("s4", 16, 5, "S4: 16 maps 5x5")]
    for ax, (key, maps, size, title) in zip(fig.axes, expected):
        assert ax.get_title(loc="left").startswith(title)
        strip = ax.images[0].get_array()
        gap = max(1, size // 5)
        assert strip.shape == (size, maps * (size + gap) - gap), key
        for k in range(maps):
            np.testing.assert_array_equal(strip[:, k * (size + gap):k * (size + gap) + size],
                                          acts[key][0, k])
    pred = int(model.predict(images[:1])[0])
    assert f"true {labels[0]}, predicted {pred}" in fig.get_suptitle()
    # a preprocessed digit gives the same maps
    again = plot.feature_maps(model, preprocess(images[:1])[0])
    np.testing.assert_array_equal(again.axes[1].images[0].get_array(),
                                  fig.axes[1].images[0].get_array())
    with pytest.raises(ValueError, match="one uint8"):
        plot.feature_maps(model, images[:2])


def test_confident_errors(model, eval_digits):
    images, labels = eval_digits
    metrics = evaluate(model, images, labels, per_sample=True)
    wrong = np.flatnonzero(metrics["predictions"] != labels)
    assert len(wrong) > 8  # 2 epochs on 1,000 digits: plenty of mistakes
    fig = plot.confident_errors(model, images, labels, count=8, metrics=metrics)
    axes = image_axes(fig)
    assert len(axes) == 8
    shown = []
    for ax in axes:
        i, true, pred = map(int, re.match(r"#(\d+): true (\d) .*\npred (\d)",
                                          ax.get_title()).groups())
        assert true == labels[i] and pred == metrics["predictions"][i] != true
        np.testing.assert_array_equal(ax.images[0].get_array(), images[i])
        shown.append(i)
    p = metrics["probabilities"]
    confidence = p[shown, metrics["predictions"][shown]]
    assert np.all(np.diff(confidence) <= 0)
    assert confidence[-1] >= np.sort(p[wrong, metrics["predictions"][wrong]])[-8]
    assert f"of {len(wrong):,} errors" in fig.get_suptitle()


def test_confident_errors_when_there_are_none(model, eval_digits):
    images = eval_digits[0][:20]
    fig = plot.confident_errors(model, images, model.predict(images))
    assert not image_axes(fig)
    assert fig.axes[0].texts[0].get_text() == "no errors"
    with pytest.raises(ValueError, match="count"):
        plot.confident_errors(model, images, model.predict(images), count=0)


def test_report_page_is_self_contained(model, eval_digits, tmp_path):
    images, labels = eval_digits
    page = report.build_html(model, images, labels, title="my model")
    assert page.startswith("<!DOCTYPE html>") and "<title>my model</title>" in page
    sources = re.findall(r'<img alt="([^"]*)" src="([^"]*)"', page)
    assert [alt for alt, _ in sources] == [
        "learning curves", "confusion matrix", "most confidently wrong digits", "C1 kernels",
        "C3 kernels", "feature maps"]
    sizes = {"learning curves": (360, 1200), "confusion matrix": (560, 640),
             "C1 kernels": (220, 900), "C3 kernels": (500, 1300), "feature maps": (800, 1300),
             "most confidently wrong digits": (450, 1320)}  # 2 rows of 8 at 100 dpi
    for alt, src in sources:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        pixels = imread(io.BytesIO(png))
        assert pixels.shape[:2] == sizes[alt], alt
        assert pixels[..., :3].std() > 0.05, alt  # not blank
    assert not re.search(r"(href|src)=\"(https?:)?//", page)
    assert "http://" not in page and "https://" not in page
    accuracy = evaluate(model, images, labels)["accuracy"]
    assert f"{100 * accuracy:.2f}%" in page
    assert f"{model.num_parameters():,}" in page
    assert "LeCun et al. 1998, LeNet-5" in page and "0.95%" in page
    # a model saved without a history: the page says so instead of drawing curves
    bare = LeNet5(model.variant, seed=0)
    page = report.build_html(bare, images, labels)
    assert "no training history" in page
    assert len(re.findall(r'src="data:image/png', page)) == 5


def test_report_of_a_model_trained_by_the_command(tmp_path, mnist_dir, capsys):
    """train, then report: the history saved by the command gives the learning curves."""
    from lenet_fast import cli

    common = ["--data-dir", str(mnist_dir), "--no-download", "--threads", "1"]
    path = tmp_path / "m.npz"
    assert cli.main(["train", *common, "--no-progress", "--epochs", "2", "--train-limit", "1000",
                     "--test-limit", "300", "--out", str(path)]) == 0
    history = lenet_fast.load(path).history
    assert [r["epoch"] for r in history] == [1, 2] and "val_accuracy" in history[1]
    out = tmp_path / "sub" / "r.html"
    capsys.readouterr()
    code = cli.main(["report", str(path), "--out", str(out), *common, "--test-limit", "300",
                     "--errors", "4"])
    assert code == 0, capsys.readouterr()
    assert capsys.readouterr().out.strip() == f"report written to {out}"
    page = out.read_text()
    assert re.findall(r'<img alt="([^"]*)"', page)[0] == "learning curves"
    assert "300 MNIST test digits" in page and "<td>epochs trained</td><td>2</td>" in page
    # without the per-epoch evaluation the history has no test curves
    assert cli.main(["train", *common, "--no-progress", "--epochs", "1", "--train-limit", "500",
                     "--test-limit", "100", "--no-epoch-eval", "--out", str(path)]) == 0
    assert "val_accuracy" not in lenet_fast.load(path).history[0]
    # an unreadable model: one error line, exit 1, nothing written
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"junk")
    capsys.readouterr()
    code = cli.main(["report", str(bad), "--out", str(tmp_path / "x.html")])
    assert code == 1 and capsys.readouterr().err.startswith("lenet-fast: error: ")
    assert not (tmp_path / "x.html").exists()
