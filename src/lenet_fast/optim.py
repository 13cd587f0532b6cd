"""Optimizers of one flat parameter vector: SGD, Adam and SDLM.

The module's documentation is that of the code it hands on (below), with SDLM's.
"""

from ._training import optim as _home
from ._training.optim import sdlm as _sdlm
from ._training.optim import (  # noqa: F401
    Optimizer, SGD, Adam, SDLM, PAPER_ETA, DEFAULT_ETA, OPTIMIZERS, make_optimizer,
)
from ._training.optim.sdlm import (  # noqa: F401
    DEPARTURES, PAPER_SAMPLES, estimate_hessian_diagonal, hessian_views, layer_means,
)

# the package's text, then SDLM's (its measurements and reasons), then the examples
__doc__ = _home.__doc__.replace("\nExamples\n--------", "\nSDLM\n----\n" + _sdlm.__doc__
                                + "\nExamples\n--------", 1)
__all__ = [
    "Optimizer", "SGD", "Adam", "SDLM", "PAPER_ETA", "DEFAULT_ETA", "OPTIMIZERS",
    "make_optimizer", "DEPARTURES", "PAPER_SAMPLES", "estimate_hessian_diagonal",
    "hessian_views", "layer_means",
]
