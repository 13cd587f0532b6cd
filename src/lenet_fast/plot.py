"""Figures of a model and of training runs (matplotlib).

The module's documentation is that of the code it hands on (below).
"""

from ._figures import plot as _home
from ._figures.plot import (  # noqa: F401
    PLOT_MISSING, PAPER_ERROR, FEATURE_LAYERS, require, png_bytes, learning_curves,
    confusion_matrix, c1_filters, mosaic, c3_filters, feature_maps, confident_errors,
    pass_curves, size_curves, misclassified, seed_spread,
)

__doc__ = _home.__doc__
__all__ = [
    "PLOT_MISSING", "PAPER_ERROR", "FEATURE_LAYERS", "require", "png_bytes",
    "learning_curves", "confusion_matrix", "c1_filters", "mosaic", "c3_filters",
    "feature_maps", "confident_errors", "pass_curves", "size_curves", "misclassified",
    "seed_spread",
]
