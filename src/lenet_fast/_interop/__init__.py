"""Interop: the scikit-learn estimator (`sklearn`) and the PyTorch module (`torch`),
each needing its extra."""
