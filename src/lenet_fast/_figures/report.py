"""``lenet-fast report``: one self-contained HTML page about a trained model.

The page holds the model's configuration, parameter count and test metrics beside
LeNet-5's figures in LeCun et al. 1998, and every figure of `lenet_fast.plot`, as PNG
images inlined in base64: it opens in a browser with no network and no other file.
Needs the ``plot`` extra (matplotlib).
"""

import base64
import html
import time

import numpy as np

from .._version import __version__
from .._training.metrics import evaluate
from . import plot

#: LeCun et al. 1998's test errors for LeNet-5 on MNIST (section III-C): trained on
#: the 60,000 training digits, and on those plus 540,000 affine distortions of them.
PAPER_RESULTS = (
    ("LeNet-5", plot.PAPER_ERROR),
    ("LeNet-5, distorted training digits", 0.008),
)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left; }
th { background: #f3f3f3; }
.side { display: flex; gap: 2em; flex-wrap: wrap; align-items: flex-start; }
img { max-width: 100%; border: 1px solid #eee; }
.note { color: #666; font-size: 0.9em; }
.warn { background: #fff4e0; border-left: 4px solid #e0a030; padding: 0.4em 0.8em; }
td.num { text-align: right; }
"""


def img_tag(fig, alt):
    """An ``<img>`` element holding a figure inline.

    Parameters
    ----------
    fig : matplotlib.figure.Figure or bytes
        The figure, or a PNG file's bytes.
    alt : str
        The alternative text.

    Returns
    -------
    str
    """
    png = fig if isinstance(fig, bytes) else plot.png_bytes(fig)
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def html_table(rows, header=None):
    """A ``<table>`` of `rows`, with `header` cells if given.

    Parameters
    ----------
    rows : iterable of sequence
        The cells of each row (text, escaped).
    header : sequence of str or None
        The header cells.

    Returns
    -------
    str
    """
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def html_page(title, parts):
    """A complete HTML document, with this page's style and no external reference.

    Parameters
    ----------
    title : str
        The document's title.
    parts : iterable of str
        The body's parts, HTML text.

    Returns
    -------
    str
    """
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(parts) + "\n</body>\n</html>\n")


def _example(images, labels, metrics):
    """Index of the digit whose feature maps are shown: the first correctly classified."""
    right = np.flatnonzero(metrics["predictions"] == np.asarray(labels))
    return int(right[0]) if len(right) else 0


def build_html(model, images, labels, *, title="lenet_fast model", errors=16):
    """The report page for `model` evaluated on `images` (uint8 (N, 28, 28)), `labels`.

    Parameters
    ----------
    model : LeNet5
        Its ``history`` (saved with the model by ``lenet-fast train``) gives the
        learning curves; without one the page says so.
    images : uint8 (N, 28, 28)
    labels : integer (N,)
    title : str
        The page's heading (e.g. the model file's name).
    errors : int
        How many of the most confidently wrong digits to show.

    Returns
    -------
    str
        A complete HTML document, with no external reference.
    """
    metrics = evaluate(model, images, labels, per_sample=True)
    history = list(getattr(model, "history", None) or [])
    config = model.config()
    rows = [("variant", config["variant"]), ("C3 connections", config["c3"]),
            ("initialisation", config["init"]), ("seed", config["seed"]),
            ("trainable parameters", f"{model.num_parameters():,}")]
    if history:
        last = history[-1]
        rows += [("epochs trained", len(history)),
                 ("training time (steps)", f"{sum(r.get('seconds', 0) for r in history):.1f} s"),
                 ("final training loss", f"{last.get('train_loss', float('nan')):.4f}")]
    results = [("this model", f"{100 * metrics['accuracy']:.2f}%", f"{100 * metrics['error']:.2f}%",
                f"{metrics['n']:,} MNIST test digits")]
    results += [(f"LeCun et al. 1998, {name}", f"{100 * (1 - err):.2f}%", f"{100 * err:.2f}%",
                 "10,000 MNIST test digits") for name, err in PAPER_RESULTS]

    parts = [f"<h1>{html.escape(title)}</h1>",
             '<div class="side"><div><h2>Model</h2>' + html_table(rows) + "</div>",
             "<div><h2>Test accuracy, beside the paper</h2>"
             + html_table(results, ("", "accuracy", "error", "evaluated on")) + "</div></div>"]
    parts.append("<h2>Learning curves</h2>")
    if history:
        parts.append(img_tag(plot.learning_curves(history), "learning curves"))
    else:
        parts.append('<p class="note">This model file has no training history (it was saved '
                     "before lenet_fast kept one, or without training).</p>")
    parts += ["<h2>Confusion matrix</h2>",
              img_tag(plot.confusion_matrix(model, images, labels, metrics=metrics),
                      "confusion matrix"),
              "<h2>The most confidently wrong test digits</h2>",
              img_tag(plot.confident_errors(model, images, labels, count=errors, metrics=metrics),
                      "most confidently wrong digits"),
              "<h2>C1 kernels</h2>", img_tag(plot.c1_filters(model), "C1 kernels"),
              "<h2>C3 kernels (LeCun et al. 1998, Table I)</h2>",
              img_tag(plot.c3_filters(model), "C3 kernels")]
    k = _example(images, labels, metrics)
    parts += [f"<h2>Feature maps of test digit #{k}</h2>",
              img_tag(plot.feature_maps(model, images[k], label=int(labels[k])), "feature maps")]
    parts.append(f'<p class="note">Made by lenet_fast {__version__} on '
                 f'{time.strftime("%Y-%m-%d %H:%M")}.</p>')
    return html_page(title, parts)
