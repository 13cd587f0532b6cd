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
def test_set(mnist_test):
    return mnist_test[0][:N_TEST], mnist_test[1][:N_TEST]


@pytest.fixture(scope="module", params=["modern", "lecun98"])
def model(request, mnist_train, test_set):
    """A model of each preset trained for 2 epochs (history with test curves)."""
    net = LeNet5(request.param, seed=0, n_threads=1)
    Trainer(net, optim.make_optimizer("adam", 0.002), batch_size=32, epochs=2,
            progress=False).fit((mnist_train[0][:1000], mnist_train[1][:1000]),
                                validation=test_set)
    return net


def rendered(fig):
    """The figure drawn by Agg: uint8 (H, W, 4)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())


def image_axes(fig):
    """The axes of `fig` (subfigures included) that show an image, in order."""
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


def test_confusion_matrix_sums_to_the_test_set(model, test_set):
    metrics = evaluate(model, *test_set)
    fig = plot.confusion_matrix(model, *test_set)
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


@pytest.mark.parametrize("c3", ["lecun", "full"])
def test_c3_filters_leave_unconnected_pairs_empty(model, c3):
    net = model
    if c3 == "full":
        net = LeNet5(model.variant, c3="full", seed=0)
    fig = plot.c3_filters(net)
    grid = [ax for ax in fig.get_axes() if ax.get_label() != "<colorbar>"]
    assert len(grid) == 96
    table = LECUN_C3_TABLE if c3 == "lecun" else np.ones((6, 16), bool)
    drawn = np.array([bool(ax.images) for ax in grid]).reshape(6, 16)
    np.testing.assert_array_equal(drawn, table)
    for (i, j), ax in zip(np.ndindex(6, 16), grid):
        if table[i, j]:
            np.testing.assert_array_equal(ax.images[0].get_array(), net.params["c3.weight"][j, i])
    assert [grid[j].get_title() for j in range(16)] == [str(j) for j in range(16)]
    assert [grid[16 * i].get_ylabel() for i in range(6)] == [f"S2 {i}" for i in range(6)]


def test_feature_maps(model, test_set):
    images, labels = test_set
    fig = plot.feature_maps(model, images[0], label=labels[0])
    acts = model.activations(preprocess(images[:1]))
    rows = fig.subfigs
    assert len(rows) == 5
    expected = [("input", 1, 32), ("c1", 6, 28), ("s2", 6, 14), ("c3", 16, 10), ("s4", 16, 5)]
    for row, (key, maps, size) in zip(rows, expected):
        axes = [ax for ax in row.get_axes() if ax.images]
        assert len(axes) == maps, key
        for k, ax in enumerate(axes):
            data = np.asarray(ax.images[0].get_array())
            assert data.shape == (size, size), key
            np.testing.assert_array_equal(data, np.asarray(acts[key])[0, k])
    pred = int(model.predict(images[:1])[0])
    assert f"true {labels[0]}, predicted {pred}" in fig.get_suptitle()
    # a preprocessed digit gives the same maps
    again = plot.feature_maps(model, preprocess(images[:1])[0])
    np.testing.assert_array_equal(again.subfigs[1].get_axes()[0].images[0].get_array(),
                                  rows[1].get_axes()[0].images[0].get_array())
    with pytest.raises(ValueError, match="one uint8"):
        plot.feature_maps(model, images[:2])


def test_confident_errors(model, test_set):
    images, labels = test_set
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


def test_confident_errors_when_there_are_none(model, test_set):
    images = test_set[0][:20]
    fig = plot.confident_errors(model, images, model.predict(images))
    assert not image_axes(fig)
    assert fig.axes[0].texts[0].get_text() == "no errors"
    with pytest.raises(ValueError, match="count"):
        plot.confident_errors(model, images, model.predict(images), count=0)


def test_every_figure_renders_to_png(model, test_set):
    images, labels = test_set
    figures = [plot.learning_curves(model), plot.confusion_matrix(model, images, labels),
               plot.c1_filters(model), plot.c3_filters(model),
               plot.feature_maps(model, images[0]),
               plot.confident_errors(model, images, labels)]
    for fig in figures:
        data = plot.png_bytes(fig)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        pixels = imread(io.BytesIO(data))
        width, height = fig.get_size_inches() * 100
        assert pixels.shape[:2] == (round(height), round(width))
        assert pixels[..., :3].std() > 0.05  # not blank


def test_report_page_is_self_contained(model, test_set, tmp_path):
    images, labels = test_set
    page = report.build_html(model, images, labels, title="my model")
    assert page.startswith("<!DOCTYPE html>") and "<title>my model</title>" in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 6
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG")
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


def test_report_command(model, tmp_path, mnist_dir, capsys):
    from lenet_fast import cli

    path = tmp_path / "m.npz"
    model.save(path)
    out = tmp_path / "sub" / "r.html"
    code = cli.main(["report", str(path), "--out", str(out), "--data-dir", str(mnist_dir),
                     "--no-download", "--test-limit", "300", "--threads", "1"])
    assert code == 0, capsys.readouterr()
    page = out.read_text()
    assert len(re.findall(r'src="data:image/png', page)) == 6
    assert "300 MNIST test digits" in page
    assert lenet_fast.load(path).history == model.history
    # an unreadable model: one error line, exit 1, nothing written
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"junk")
    code = cli.main(["report", str(bad), "--out", str(tmp_path / "x.html")])
    assert code == 1 and not (tmp_path / "x.html").exists()
