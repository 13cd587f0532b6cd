"""The tuned training recipes.

The module's documentation is that of the code it hands on (below).
"""

from ._training import recipes as _home
from ._training.recipes import (  # noqa: F401
    TRAIN_DEFAULTS, AUGMENT_DEFAULT, RECIPES, SDLM_RECIPE, SDLM_INIT, OPTIMIZER_NEUTRAL,
    optimizer_options, make_optimizer, default_out, train_settings,
)

__doc__ = _home.__doc__
__all__ = [
    "TRAIN_DEFAULTS", "AUGMENT_DEFAULT", "RECIPES", "SDLM_RECIPE", "SDLM_INIT",
    "OPTIMIZER_NEUTRAL", "optimizer_options", "make_optimizer", "default_out",
    "train_settings",
]
