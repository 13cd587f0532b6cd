# lenet_fast.plot, public: figures of a model and of training runs (matplotlib). Its
# text is that of the module that holds the code, handed on with its names.
from ._figures.plot import (  # noqa: F401
    __doc__, PLOT_MISSING, PAPER_ERROR, FEATURE_LAYERS, require, png_bytes,
    learning_curves, confusion_matrix, c1_filters, mosaic, c3_filters, feature_maps,
    confident_errors, pass_curves, size_curves, misclassified, seed_spread,
)

__all__ = [
    "PLOT_MISSING", "PAPER_ERROR", "FEATURE_LAYERS", "require", "png_bytes",
    "learning_curves", "confusion_matrix", "c1_filters", "mosaic", "c3_filters",
    "feature_maps", "confident_errors", "pass_curves", "size_curves", "misclassified",
    "seed_spread",
]
