"""Figures of a trained LeNet-5: what it learned and how it trained.

Needs matplotlib, an optional extra: ``pip install "lenet-fast[plot]"``. Every
function returns a new `matplotlib.figure.Figure` drawn on the Agg canvas: no
display, no pyplot and no global state are involved, so the functions work on a
server and from several threads. Save a figure with ``fig.savefig("f.png")`` or
`png_bytes`.

========================  ===================================================
`learning_curves`         loss, error (training and test) and learning rate
                          per epoch, from a training history
`confusion_matrix`        true digit against predicted digit on a test set
`c1_filters`              the 6 C1 kernels (5x5)
`c3_filters`              the 16 x 6 C3 kernels laid out as LeCun's Table I
                          (LeCun et al. 1998): unconnected pairs stay empty
`feature_maps`            the maps of C1, S2, C3 and S4 for one digit
`confident_errors`        the test digits the model gets wrong with the highest
                          probability, with true and predicted labels
`pass_curves`             error against the pass over many seeds: each seed,
                          the mean and the spread (``lenet-fast reproduce``,
                          the paper's Fig. 5)
`size_curves`             error against the training-set size (Fig. 6)
`misclassified`           every digit of a list of errors, true -> predicted
                          (Fig. 8)
`seed_spread`             one error per seed for several conditions, with a
                          mean and an interval, beside the paper's (Fig. 9)
========================  ===================================================
"""

import io

import numpy as np

from .._io.datasets import preprocess

PLOT_MISSING = 'lenet_fast.plot needs matplotlib: pip install "lenet-fast[plot]"'

#: Test error of LeNet-5 in LeCun et al. 1998 (section III-C), for comparison lines.
PAPER_ERROR = 0.0095

#: Layers whose maps `feature_maps` draws: (key of `LeNet5.activations`, title).
FEATURE_LAYERS = (("c1", "C1"), ("s2", "S2"), ("c3", "C3"), ("s4", "S4"))


def require():
    """Raise ImportError naming the ``plot`` extra if matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(PLOT_MISSING) from None


def _figure(width, height, **kwargs):
    """A new Figure on an Agg canvas (no pyplot)."""
    require()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), **kwargs)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig, dpi=100):
    """The PNG file of `fig`, as bytes.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to render.
    dpi : int
        Dots per inch.

    Returns
    -------
    bytes
    """
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi)
    return out.getvalue()


def _history_of(history):
    history = getattr(history, "history", history)  # a model: its saved history
    if not isinstance(history, (list, tuple)) or not history:
        raise ValueError("no training history to plot (a model trained by Trainer.fit or "
                         "'lenet-fast train' has one; older model files have none)")
    return history


def _series(history, key):
    """(epochs, values) of the entries of `history` that have `key`."""
    pairs = [(r.get("epoch", i + 1), r[key]) for i, r in enumerate(history) if key in r]
    if not pairs:
        return np.empty(0), np.empty(0)
    epochs, values = zip(*pairs)
    return np.asarray(epochs, float), np.asarray(values, float)


def learning_curves(history, *, paper=True):
    """Loss, error and learning rate per epoch.

    Parameters
    ----------
    history : list of dict or LeNet5
        Per-epoch records as `Trainer.fit` returns them (keys epoch, lr, train_loss,
        train_accuracy, and val_loss, val_accuracy when the run was evaluated after
        each epoch: ``lenet-fast train`` evaluates on the test set, drawn as
        "test"), or a model, for its ``history``.
    paper : bool
        Draw LeNet-5's test error in LeCun et al. 1998 (0.95%) on the error axes.

    Returns
    -------
    matplotlib.figure.Figure
        Three axes: loss (training, test), error in % on a log scale (training,
        test) and learning rate, each against the epoch.
    """
    history = _history_of(history)
    fig = _figure(12, 3.6, layout="constrained")
    from matplotlib.ticker import FuncFormatter

    ax_loss, ax_err, ax_lr = fig.subplots(1, 3)
    for key, label in (("train_loss", "training"), ("val_loss", "test")):
        x, y = _series(history, key)
        if len(x):
            ax_loss.plot(x, y, marker="o", label=label)
    ax_loss.set(title="loss", xlabel="epoch", ylabel="mean loss")
    for key, label in (("train_accuracy", "training"), ("val_accuracy", "test")):
        x, y = _series(history, key)
        if len(x):
            ax_err.plot(x, np.maximum(100 * (1 - y), 1e-3), marker="o", label=label)
    if paper:
        ax_err.axhline(100 * PAPER_ERROR, color="grey", linestyle="--",
                       label=f"LeCun et al. 1998 ({100 * PAPER_ERROR:.2f}%)")
    ax_err.set_yscale("log")
    percent = FuncFormatter(lambda v, _: f"{v:g}")  # 0.5, 1, 2 rather than 2 x 10^0
    ax_err.yaxis.set_major_formatter(percent)
    ax_err.yaxis.set_minor_formatter(percent)
    ax_err.set(title="error (100% - accuracy)", xlabel="epoch", ylabel="error (%)")
    x, y = _series(history, "lr")
    ax_lr.plot(x, y, marker="o", color="C2")
    ax_lr.set(title="learning rate (end of epoch)", xlabel="epoch", ylabel="learning rate")
    for ax in (ax_loss, ax_err):
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    for ax in (ax_loss, ax_err, ax_lr):
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def confusion_matrix(model, images, labels, *, metrics=None):
    """The confusion matrix on a test set, counts in each cell.

    Parameters
    ----------
    model : LeNet5
    images : uint8 (N, 28, 28)
    labels : integer (N,)
    metrics : dict or None
        The result of ``lenet_fast.metrics.evaluate(model, images, labels)``, to
        reuse instead of evaluating again.

    Returns
    -------
    matplotlib.figure.Figure
        One axes whose image is the 10x10 int64 count matrix (rows: true digit,
        columns: predicted digit; it sums to N), on a symmetric-log colour scale.
    """
    from matplotlib.colors import SymLogNorm

    if metrics is None:
        from .._training.metrics import evaluate
        metrics = evaluate(model, images, labels)
    counts = np.asarray(metrics["confusion"], dtype=np.int64)
    fig = _figure(6.4, 5.6, layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(counts, cmap="Blues", norm=SymLogNorm(linthresh=1, vmin=0,
                                                        vmax=max(1, counts.max())))
    threshold = np.sqrt(max(1, counts.max()))
    for (i, j), v in np.ndenumerate(counts):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                    color="white" if v > threshold else "black")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set(xlabel="predicted digit", ylabel="true digit",
           title=f"confusion matrix: {100 * metrics['accuracy']:.2f}% of {metrics['n']:,} "
                 "correct")
    fig.colorbar(im, ax=ax, label="images")
    return fig


def _kernel_scale(w):
    """Symmetric colour limits for weights `w`."""
    v = float(np.abs(w).max()) if w.size else 1.0
    return -v or -1.0, v or 1.0


def c1_filters(model):
    """The 6 C1 kernels, 5x5, on one symmetric colour scale (red > 0 > blue).

    Parameters
    ----------
    model : LeNet5
        The model whose kernels to show.

    Returns
    -------
    matplotlib.figure.Figure
        Six axes, each showing one float32 (5, 5) kernel, and a colour bar.
    """
    w = np.asarray(model.params["c1.weight"])[:, 0]
    lo, hi = _kernel_scale(w)
    fig = _figure(9, 2.2)
    axes = fig.subplots(1, w.shape[0], gridspec_kw=dict(left=0.01, right=0.9, bottom=0.04,
                                                        top=0.72, wspace=0.08))
    for k, ax in enumerate(axes):
        im = ax.imshow(w[k], cmap="RdBu_r", vmin=lo, vmax=hi)
        ax.set_title(f"C1 map {k}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, cax=fig.add_axes((0.92, 0.08, 0.012, 0.62), label="colorbar"),
                 label="weight")
    fig.suptitle("C1 kernels (5x5, one per map)")
    return fig


def mosaic(maps, gap, rows=1):
    """Tile equal-sized maps into one masked image, `gap` masked pixels between tiles.

    Parameters
    ----------
    maps : float array (K, H, W), or (rows, cols, H, W) of tiles; a tile that is
        entirely NaN is left masked (drawn empty)
    gap : int
    rows : int
        With (K, H, W) maps: rows of the grid (K must divide into them).

    Returns
    -------
    numpy.ma.MaskedArray float (rows (H + gap) - gap, cols (W + gap) - gap)
        Tile (r, c) at ``[r (H + gap):, c (W + gap):]``; gaps and NaN tiles masked.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 3:
        maps = maps.reshape(rows, -1, *maps.shape[1:])
    r, c, h, w = maps.shape
    out = np.full((r * (h + gap) - gap, c * (w + gap) - gap), np.nan)
    for i, j in np.ndindex(r, c):
        out[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = maps[i, j]
    return np.ma.masked_invalid(out)


def c3_filters(model):
    """The C3 kernels as a grid: rows = the 6 S2 maps, columns = the 16 C3 maps.

    The grid is laid out like LeCun et al. 1998's Table I: a pair of maps that the
    model's connection table leaves unconnected is an empty grey cell.

    Parameters
    ----------
    model : LeNet5
        The model whose C3 kernels, and connection table, to show.

    Returns
    -------
    matplotlib.figure.Figure
        One axes whose image is `mosaic` of the kernels with a 1-pixel gap, float
        (35, 95) masked: the float32 (5, 5) kernel ``params["c3.weight"][j, i]`` of
        S2 map i and C3 map j at ``[6 i:6 i + 5, 6 j:6 j + 5]``, masked for an
        unconnected pair, which is drawn as a grey square (one Rectangle patch each);
        then a colour bar.
    """
    from matplotlib.patches import Rectangle

    w = np.asarray(model.params["c3.weight"])          # (16, 6, 5, 5)
    table = np.asarray(model.table, dtype=bool)         # (6, 16)
    tiles = np.where(table[:, :, None, None], w.transpose(1, 0, 2, 3), np.nan)
    lo, hi = _kernel_scale(w[table.T])
    fig = _figure(13, 5)
    ax = fig.add_axes((0.05, 0.03, 0.84, 0.84))
    for i, j in zip(*np.nonzero(~table)):
        ax.add_patch(Rectangle((6 * j - 0.5, 6 * i - 0.5), 5, 5, color="0.85", linewidth=0))
    im = ax.imshow(mosaic(tiles, 1), cmap="RdBu_r", vmin=lo, vmax=hi, interpolation="nearest")
    ax.set_xticks(6 * np.arange(table.shape[1]) + 2, [str(j) for j in range(table.shape[1])])
    ax.set_yticks(6 * np.arange(table.shape[0]) + 2, [f"S2 {i}" for i in range(table.shape[0])])
    ax.tick_params(length=0, labeltop=True, labelbottom=False)
    for side in ax.spines.values():
        side.set_visible(False)
    fig.colorbar(im, cax=fig.add_axes((0.92, 0.1, 0.012, 0.7), label="colorbar"),
                 label="weight")
    kind = "LeCun's Table I" if not table.all() else "dense"
    fig.suptitle(f"C3 kernels: columns = C3 maps, rows = S2 maps ({kind}; grey = unconnected)")
    return fig


def _one_image(image):
    """One digit as the model's float32 (1, 1, 32, 32) input."""
    x = np.asarray(image)
    if x.dtype == np.uint8 and x.shape == (28, 28):
        return preprocess(x[None])
    if x.dtype == np.float32 and x.shape in ((1, 32, 32), (1, 1, 32, 32)):
        return np.ascontiguousarray(x.reshape(1, 1, 32, 32))
    raise ValueError("image must be one uint8 (28, 28) digit or a float32 (1, 32, 32) "
                     f"preprocessed one, got {x.dtype} {x.shape}")


def feature_maps(model, image, *, label=None):
    """The maps of C1, S2, C3 and S4 for one digit (`LeNet5.activations`).

    Parameters
    ----------
    model : LeNet5
    image : uint8 (28, 28) or float32 (1, 32, 32)
        One digit, raw or preprocessed.
    label : int or None
        Its true digit, shown in the title.

    Returns
    -------
    matplotlib.figure.Figure
        Five axes, one per layer, each titled and showing one `mosaic` row of the
        layer's maps with a gap of max(1, size // 5) pixels: the 32x32 input, then the
        6 C1 maps (28x28), 6 S2 maps (14x14), 16 C3 maps (10x10) and 16 S4 maps (5x5),
        each layer on its own colour scale.
    """
    x = _one_image(image)
    acts = model.activations(x)
    pred = int(model.predicted(acts["output"])[0])
    rows = [("input", "input (32x32, preprocessed)", acts["input"][0])]
    for key, name in FEATURE_LAYERS:
        maps = np.asarray(acts[key])[0]
        rows.append((key, f"{name}: {maps.shape[0]} maps {maps.shape[1]}x{maps.shape[2]}",
                     maps))
    fig = _figure(13, 8)
    axes = fig.subplots(len(rows), 1, gridspec_kw=dict(
        height_ratios=[1.6, 1.9, 1.9, 0.8, 0.8], left=0.02, right=0.98, bottom=0.02,
        top=0.91, hspace=0.35))
    for ax, (key, title, maps) in zip(axes, rows):
        lo, hi = float(maps.min()), float(maps.max())
        ax.imshow(mosaic(maps, max(1, maps.shape[-1] // 5)),
                  cmap="gray" if key == "input" else "viridis", vmin=lo,
                  vmax=hi if hi > lo else lo + 1, interpolation="nearest")
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_axis_off()
    truth = "" if label is None else f"true {int(label)}, "
    fig.suptitle(f"feature maps for one digit ({truth}predicted {pred})")
    return fig


def _probability(p):
    """A probability in 3 decimals, with the ends shown as bounds."""
    return "<0.001" if p < 0.0005 else ">0.999" if p > 0.9995 else f"{p:.3f}"


def confident_errors(model, images, labels, *, count=16, metrics=None):
    """The test digits the model gets wrong with the highest probability.

    Parameters
    ----------
    model : LeNet5
    images : uint8 (N, 28, 28)
    labels : integer (N,)
    count : int
        How many to show (at most; fewer if the model makes fewer errors).
    metrics : dict or None
        ``lenet_fast.metrics.evaluate(model, images, labels, per_sample=True)``, to
        reuse instead of evaluating again.

    Returns
    -------
    matplotlib.figure.Figure
        Up to `count` axes (8 per row), the wrong digits by decreasing probability of
        the predicted class (ties by the loss), each a uint8 (28, 28) image titled
        with its index, true and predicted digit and both probabilities. With no errors, one empty axes
        saying so.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if metrics is None or "probabilities" not in metrics:
        from .._training.metrics import evaluate
        metrics = evaluate(model, images, labels, per_sample=True)
    labels = np.asarray(labels).astype(np.int64)
    proba = metrics["probabilities"]
    pred = metrics["predictions"]
    wrong = np.flatnonzero(pred != labels)
    # by the predicted class's probability, ties (probabilities that round to 1 in
    # float32, common with lecun98's RBF outputs) by the loss
    order = wrong[np.lexsort((-metrics["losses"][wrong], -proba[wrong, pred[wrong]]))][:count]
    cols = min(8, max(1, len(order)))
    rows = max(1, -(-len(order) // cols))
    height = 2.0 * rows + 0.5
    fig = _figure(1.6 * cols + 0.4, height)
    axes = np.atleast_1d(fig.subplots(rows, cols, gridspec_kw=dict(
        left=0.02, right=0.98, bottom=0.1 / height, top=1 - 0.9 / height, hspace=0.45,
        wspace=0.1))).ravel()
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[max(1, len(order)):]:
        ax.set_axis_off()  # the unused places of the last row
    if len(order) == 0:
        axes[0].text(0.5, 0.5, "no errors", ha="center", va="center")
    for ax, i in zip(axes, order):
        ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=255)
        ax.set_title(f"#{i}: true {labels[i]} (p {_probability(proba[i, labels[i]])})\n"
                     f"pred {pred[i]} (p {_probability(proba[i, pred[i]])})", fontsize=8)
    fig.suptitle(f"the {len(order)} most confidently wrong of {len(wrong):,} errors "
                 f"({len(labels):,} digits)")
    return fig


def _percent_axis(ax, log=True):
    """Error axis in %: log scale with plain tick labels (0.5, 1, 2)."""
    from matplotlib.ticker import FuncFormatter

    if log:
        ax.set_yscale("log")
    percent = FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(percent)
    ax.yaxis.set_minor_formatter(percent)
    ax.grid(True, which="both", alpha=0.3)


def pass_curves(curves, *, paper=(), title=None):
    """Error after every pass over many seeds: each seed thin, the mean thick, the
    range between the lowest and highest seed shaded.

    Parameters
    ----------
    curves : dict of str to array-like (seeds, passes)
        Error fractions per seed and pass (pass 1 first), e.g. ``{"test": ...,
        "training": ...}``; each label gets its own colour.
    paper : sequence of (pass, error, label)
        Points to mark (the paper's figures), error a fraction.
    title : str or None

    Returns
    -------
    matplotlib.figure.Figure
        One axes, the error in % on a log scale against the pass.
    """
    fig = _figure(8, 4.8, layout="constrained")
    ax = fig.subplots()
    for k, (label, values) in enumerate(curves.items()):
        e = 100 * np.atleast_2d(np.asarray(values, dtype=float))
        if e.size == 0:
            continue
        x = np.arange(1, e.shape[1] + 1)
        color = f"C{k}"
        for row in e:
            ax.plot(x, np.maximum(row, 1e-3), color=color, alpha=0.25, linewidth=0.8)
        ax.fill_between(x, np.maximum(e.min(axis=0), 1e-3), np.maximum(e.max(axis=0), 1e-3),
                        color=color, alpha=0.12, linewidth=0)
        ax.plot(x, np.maximum(e.mean(axis=0), 1e-3), color=color, linewidth=2.2, marker="o",
                markersize=3, label=f"{label}: mean of {e.shape[0]} seed(s), range shaded")
    for j, (where, error, label) in enumerate(paper):
        ax.plot([where], [100 * error], marker="*", markersize=14, linestyle="none",
                color=("C3", "C4", "C5")[j % 3], markeredgecolor="black", label=label)
    _percent_axis(ax)
    ax.set(xlabel="pass over the training set", ylabel="error (%)", title=title or "")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8)
    return fig


def size_curves(series, *, paper=(), title=None):
    """Error against the training-set size: each seed a dot, the mean a line.

    Parameters
    ----------
    series : sequence of (label, sizes, values)
        `values[i]`: the error fractions (one per seed) at `sizes[i]` training digits.
    paper : sequence of (size, error, label)
        Points to mark (the paper's figures).
    title : str or None

    Returns
    -------
    matplotlib.figure.Figure
        One axes, error in % (log scale) against the size (log scale).
    """
    fig = _figure(8, 4.8, layout="constrained")
    from matplotlib.ticker import NullLocator

    ax = fig.subplots()
    for k, (label, sizes, values) in enumerate(series):
        color = f"C{k}"
        means = []
        for size, vals in zip(sizes, values):
            vals = 100 * np.asarray(vals, dtype=float)
            ax.plot(np.full(len(vals), size), np.maximum(vals, 1e-3), linestyle="none",
                    marker="o", markersize=4, alpha=0.45, color=color)
            means.append(vals.mean() if len(vals) else np.nan)
        ax.plot(sizes, np.maximum(means, 1e-3), color=color, marker="s", linewidth=2,
                label=f"{label} (mean; dots: seeds)")
    for j, (size, error, label) in enumerate(paper):
        ax.plot([size], [100 * error], marker="*", markersize=14, linestyle="none",
                color=("C3", "C4", "C5")[j % 3], markeredgecolor="black", label=label)
    ax.set_xscale("log")
    _percent_axis(ax)
    sizes = sorted({int(s) for _, sz, _ in series for s in sz})
    ax.set_xticks(sizes, [f"{s:,}" for s in sizes])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set(xlabel="training digits", ylabel="error (%)", title=title or "")
    ax.legend(fontsize=8)
    return fig


def misclassified(images, labels, predicted, *, title=None, cols=14):
    """Every digit of a list of errors, each titled "true->predicted" as the paper's Fig. 8.

    Parameters
    ----------
    images : uint8 (K, 28, 28)
    labels, predicted : integer (K,)
        True and predicted digits.
    title : str or None
    cols : int

    Returns
    -------
    matplotlib.figure.Figure
        K axes (`cols` per row), each a digit; one axes saying "no errors" if K is 0.
    """
    images = np.asarray(images)
    k = len(images)
    cols = max(1, min(cols, k))
    rows = max(1, -(-k // cols))
    height = 1.0 * rows + 0.8
    fig = _figure(0.85 * cols + 0.3, height)
    axes = np.atleast_1d(fig.subplots(rows, cols, gridspec_kw=dict(
        left=0.01, right=0.99, bottom=0.02, top=1 - 0.75 / height, hspace=0.5,
        wspace=0.08))).ravel()
    for ax in axes:
        ax.set_axis_off()
    if k == 0:
        axes[0].text(0.5, 0.5, "no errors", ha="center", va="center")
    for ax, image, true, pred in zip(axes, images, labels, predicted):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=255)
        ax.set_title(f"{int(true)}->{int(pred)}", fontsize=8, pad=2)
    fig.suptitle(title or f"{k} misclassified digits (true->predicted)")
    return fig


def seed_spread(groups, *, title=None):
    """One error per seed for each condition, its mean and interval, and the paper's figure.

    Parameters
    ----------
    groups : sequence of dict
        Each with ``label``, ``errors`` (fractions, one per seed), ``interval`` ((low,
        high) fractions, or None) and ``paper`` (a fraction, or None).
    title : str or None

    Returns
    -------
    matplotlib.figure.Figure
        One axes: a row per condition (first on top), seeds as dots, the mean as a
        bar with the interval as a line, the paper's figure as a star.
    """
    fig = _figure(10, 1.0 + 0.75 * max(1, len(groups)), layout="constrained")
    ax = fig.subplots()
    starred = False
    for row, group in enumerate(groups):
        y = len(groups) - 1 - row
        errors = 100 * np.asarray(group["errors"], dtype=float)
        ax.plot(errors, np.full(len(errors), y), linestyle="none", marker="o", alpha=0.5,
                color="C0", label="one seed" if row == 0 else None)
        if len(errors):
            ax.plot([errors.mean()] * 2, [y - 0.25, y + 0.25], color="C0", linewidth=2.5,
                    label="mean" if row == 0 else None)
        if group.get("interval") is not None:
            lo, hi = (100 * v for v in group["interval"])
            ax.plot([lo, hi], [y, y], color="C0", linewidth=1.2,
                    label="95% interval of the mean" if row == 0 else None)
        if group.get("paper") is not None:
            ax.plot([100 * group["paper"]], [y], marker="*", markersize=14, color="C3",
                    markeredgecolor="black", linestyle="none",
                    label=None if starred else "LeCun et al. 1998")
            starred = True
    ax.set_yticks(range(len(groups)), [g["label"] for g in reversed(groups)])
    ax.set_ylim(-0.6, len(groups) - 0.4)
    ax.set(xlabel="test error (%)")
    if title:
        fig.suptitle(title)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig
