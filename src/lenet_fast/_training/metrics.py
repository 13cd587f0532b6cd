"""Evaluation: accuracy, error, per-class accuracy, confusion matrix, loss."""

import numpy as np

from .._io.datasets import check_digits


def evaluate(model, images, labels, batch_size=1000, *, per_sample=False):
    """Evaluate `model` on uint8 images (N, 28, 28) and labels (N,).

    Parameters
    ----------
    model : LeNet5
        The model to evaluate; its ``n_threads`` run the passes.
    images : uint8 (N, 28, 28)
        MNIST digits, as `lenet_fast.datasets.load_mnist` gives them.
    labels : integer (N,)
        Their labels, 0..9.
    batch_size : int
        Images per forward pass.
    per_sample : bool
        Also return each image's prediction, class probabilities and loss (below).

    Returns
    -------
    dict
        accuracy, error (fractions), loss (the model's mean training loss),
        per_class_accuracy (list of 10), confusion (10x10 list, rows = true
        label, columns = prediction), n. With ``per_sample=True`` also (numpy
        arrays, in the order of `images`):

        - ``predictions``: int64 (N,), the predicted digits;
        - ``probabilities``: float32 (N, 10), as `LeNet5.predict_proba` up to
          rounding (modern: softmax of the logits; lecun98: softmax of the negated
          RBF distances);
        - ``losses``: float64 (N,), each image's training loss (modern: softmax
          cross-entropy; lecun98: the MAP loss of eq. 9, y_label + log(e^-j +
          sum_i e^-y_i)), whose mean is ``loss`` up to float32 rounding.
    """
    images = check_digits(images)
    labels = np.asarray(labels)
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
    n = images.shape[0]
    if n == 0:
        raise ValueError("nothing to evaluate: no images")
    pred = np.empty(n, dtype=np.int64)
    outputs = np.empty((n, 10), np.float32) if per_sample else None
    loss_sum = 0.0
    for start in range(0, n, batch_size):
        chunk = images[start:start + batch_size]   # uint8: preprocessed inside the pass
        loss, out = model.loss(chunk, labels[start:start + batch_size])
        loss_sum += loss * chunk.shape[0]
        pred[start:start + chunk.shape[0]] = model.predicted(out)
        if per_sample:
            outputs[start:start + chunk.shape[0]] = out
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (labels.astype(np.int64), pred), 1)
    totals = confusion.sum(axis=1)
    per_class = np.divide(np.diag(confusion), totals, out=np.zeros(10), where=totals > 0)
    accuracy = float(np.trace(confusion) / n)
    result = {
        "n": int(n),
        "accuracy": accuracy,
        "error": 1.0 - accuracy,
        "loss": loss_sum / n,
        "per_class_accuracy": per_class.tolist(),
        "confusion": confusion.tolist(),
    }
    if per_sample:
        probabilities, losses = _per_sample(model, outputs, labels)
        result.update(predictions=pred, probabilities=probabilities, losses=losses)
    return result


def _per_sample(model, outputs, labels):
    """Class probabilities float32 (N, 10) and losses float64 (N,) from the outputs.

    modern: the outputs are logits z; p = softmax(z), loss = -log p[label].
    lecun98: the outputs are RBF distances y; p = softmax(-y), loss = y[label] +
    log(e^-j + sum_i e^-y_i) (eq. 9, j = `lenet_fast.model.MAP_J`).
    """
    from .._model.lenet5 import MAP_J

    scores = outputs.astype(np.float64)
    if model.variant == "lecun98":
        np.negative(scores, out=scores)
    top = scores.max(axis=1, keepdims=True)
    shifted = scores - top
    exp = np.exp(shifted)
    total = exp.sum(axis=1)
    probabilities = (exp / total[:, None]).astype(np.float32)
    picked = scores[np.arange(len(labels)), labels.astype(np.intp)]
    if model.variant == "lecun98":
        # log(e^-j + sum_i e^-y_i), shifted by m = max(-j, max_i -y_i) as the kernel does
        m = np.maximum(top[:, 0], -MAP_J)
        log_norm = m + np.log(np.exp(-MAP_J - m) + total * np.exp(top[:, 0] - m))
    else:
        log_norm = top[:, 0] + np.log(total)
    losses = log_norm - picked
    return probabilities, losses


def format_report(metrics):
    """Text report: accuracy, error, per-class accuracy and the confusion matrix.

    Parameters
    ----------
    metrics : dict
        What `evaluate` returns (the per-sample arrays are not used).

    Returns
    -------
    str
        Several lines, for a terminal.
    """
    lines = [f"accuracy {metrics['accuracy'] * 100:.2f}%  error {metrics['error'] * 100:.2f}%  "
             f"({metrics['n']:,} images, loss {metrics['loss']:.4f})", "",
             "per-class accuracy:"]
    lines.append("  " + "  ".join(f"{d}:{a * 100:6.2f}%" for d, a in
                                  enumerate(metrics["per_class_accuracy"])))
    lines += ["", "confusion matrix (rows: true digit, columns: predicted):",
              "      " + "".join(f"{d:>6}" for d in range(10))]
    for d, row in enumerate(metrics["confusion"]):
        lines.append(f"  {d:>3} " + "".join(f"{v:>6}" for v in row))
    return "\n".join(lines)
